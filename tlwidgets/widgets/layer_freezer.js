// LayerFreezer view: one row per block; the kernel applies changes to the Keras model.

function fmt(n) {
  return n.toLocaleString("en-US");
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el: root }) {
  const expanded = new Set();
  root.classList.add("tlw-layer-freezer");

  function send(states) {
    model.set("trainable", states);
    model.save_changes();
  }

  function draw() {
    root.replaceChildren();
    const blocks = model.get("blocks");
    const states = model.get("trainable");

    const head = el("div", "tlw-lf-header");
    head.append(el("span", "tlw-lf-title", model.get("title")));
    const share = (100 * model.get("share")).toFixed(1);
    head.append(el("span", "tlw-lf-count",
      `${fmt(model.get("trainable_params"))} trainable of ${fmt(model.get("total_params"))} parameters (${share}%)`));
    const bnLabel = el("label", "tlw-lf-bn-toggle");
    const bnBox = el("input");
    bnBox.type = "checkbox";
    bnBox.checked = model.get("train_bn");
    bnBox.addEventListener("change", () => {
      model.set("train_bn", bnBox.checked);
      model.save_changes();
    });
    bnLabel.append(bnBox, " train BatchNormalization too (for comparison)");
    head.append(bnLabel);
    const actions = el("span", "tlw-lf-actions");
    const freezeAll = el("button", "tlw-lf-freeze-all", "freeze all");
    freezeAll.addEventListener("click", () => send(blocks.map(() => false)));
    const unfreezeAll = el("button", "tlw-lf-unfreeze-all", "unfreeze all");
    unfreezeAll.addEventListener("click", () => send(blocks.map(() => true)));
    actions.append(freezeAll, unfreezeAll);
    head.append(actions);
    root.append(head);
    if (model.get("error")) root.append(el("div", "tlw-lf-error", model.get("error")));

    const stack = el("div", "tlw-lf-stack");
    blocks.forEach((block, i) => {
      const row = el("div", `tlw-lf-block tlw-lf-${block.state}`);
      row.dataset.key = block.key;
      row.dataset.state = block.state;
      const line = el("div", "tlw-lf-line");
      const caret = el("button", "tlw-lf-expand", expanded.has(block.key) ? "▾" : "▸");
      caret.title = "show the layers of this block";
      caret.addEventListener("click", () => {
        if (expanded.has(block.key)) expanded.delete(block.key);
        else expanded.add(block.key);
        draw();
      });
      const name = el("span", "tlw-lf-name", block.parent ? `${block.parent} / ${block.name}` : block.name);
      const info = el("span", "tlw-lf-info",
        `${block.layers.length} ${block.layers.length === 1 ? "layer" : "layers"} · ${fmt(block.params)} params · ${block.state}`);
      line.append(caret, name, info);
      if (block.bn) line.append(el("span", `tlw-lf-badge tlw-lf-bn-${block.bn}`, `BN ${block.bn}`));
      if (block.state !== "none") {
        const toggle = el("button", "tlw-lf-toggle", states[i] ? "freeze" : "unfreeze");
        toggle.addEventListener("click", () => {
          const next = states.slice();
          next[i] = !next[i];
          send(next);
        });
        const upto = el("button", "tlw-lf-upto", "freeze up to here");
        upto.addEventListener("click", () => send(blocks.map((_, j) => j > i)));
        line.append(toggle, upto);
      }
      row.append(line);
      if (expanded.has(block.key)) {
        const table = el("table", "tlw-lf-layers");
        for (const layer of block.layers) {
          const tr = el("tr", layer.trainable ? "tlw-lf-on" : "tlw-lf-off");
          for (const text of [layer.name, layer.type, layer.shape, fmt(layer.params),
                              layer.bn ? `BN ${layer.bn}` : (layer.trainable ? "trainable" : "frozen")]) {
            tr.append(el("td", "", text));
          }
          table.append(tr);
        }
        row.append(table);
      }
      stack.append(row);
    });
    root.append(stack);
  }

  for (const name of ["blocks", "trainable", "train_bn", "trainable_params", "share", "error"]) {
    model.on(`change:${name}`, draw);
  }
  draw();
}

export default { render };
