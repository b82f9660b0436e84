// Labeller view: the batch as thumbnails, a button per class under each, keys 1..9 and arrows.
// The kernel owns the state; this view only sets `choices`, `cursor`, `strategy`,
// `batch_size`, `demo_clicks` and `uploads`.

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el: root }) {
  root.classList.add("tlw-labeller");
  root.tabIndex = 0;
  root.dataset.lmSuppressShortcuts = "true"; // keys 1..9 label here, not JupyterLab commands

  function set(name, value) {
    model.set(name, value);
    model.save_changes();
  }

  function choose(i, label) {
    const choices = [...model.get("choices")];
    if (i < 0 || i >= choices.length) return;
    choices[i] = label;
    model.set("choices", choices);
    model.set("cursor", Math.min(i + 1, choices.length - 1));
    model.save_changes();
  }

  function draw() {
    root.replaceChildren();
    const classes = model.get("classes");
    const batch = model.get("batch");
    const choices = model.get("choices");
    const cursor = model.get("cursor");
    const busy = model.get("busy");

    const bar = el("div", "tlw-lb-bar");
    const strat = el("select", "tlw-lb-strategy");
    model.get("strategies").forEach((s) => {
      const o = el("option", "", s);
      o.value = s;
      o.selected = s === model.get("strategy");
      strat.append(o);
    });
    strat.addEventListener("change", () => set("strategy", strat.value));
    const size = el("input", "tlw-lb-batch-size");
    size.type = "number";
    size.min = 1;
    size.value = model.get("batch_size");
    size.addEventListener("change", () => set("batch_size", parseInt(size.value, 10) || 0));
    bar.append(el("label", "", "strategy "), strat, el("label", "", " batch "), size);
    if (model.get("can_demo")) {
      const demo = el("button", "tlw-lb-demo", "label for me");
      demo.title = "fill in the true labels of this batch (demo)";
      demo.disabled = busy;
      demo.addEventListener("click", () => set("demo_clicks", model.get("demo_clicks") + 1));
      bar.append(demo);
    }
    if (model.get("accepts_uploads")) {
      const up = el("input", "tlw-lb-upload");
      up.type = "file";
      up.multiple = true;
      up.accept = "image/*";
      up.addEventListener("change", async () => {
        const files = await Promise.all([...up.files].map(async (f) => {
          const buf = new Uint8Array(await f.arrayBuffer());
          let bin = "";
          for (let k = 0; k < buf.length; k += 0x8000) {
            bin += String.fromCharCode.apply(null, buf.subarray(k, k + 0x8000));
          }
          return { name: f.name, data: btoa(bin) };
        }));
        set("uploads", files);
      });
      bar.append(up);
    }
    bar.append(el("span", "tlw-lb-count",
      `${model.get("n_labelled")} / ${model.get("n_pool")} labelled`));
    root.append(bar);

    const status = el("div", "tlw-lb-status" + (busy ? " tlw-lb-busy" : ""),
      busy ? "Refitting…" : model.get("status"));
    root.append(status);
    if (model.get("error")) root.append(el("div", "tlw-lb-error", model.get("error")));

    const main = el("div", "tlw-lb-main");
    const grid = el("div", "tlw-lb-grid");
    batch.forEach((item, i) => {
      const card = el("div", "tlw-lb-card" + (i === cursor ? " tlw-lb-cursor" : "") +
        (choices[i] ? " tlw-lb-done" : ""));
      card.dataset.position = item.position;
      const img = el("img", "tlw-lb-thumb");
      img.src = item.src;
      img.alt = item.item;
      img.title = item.item + (item.twins ? ` (+${item.twins} duplicate)` : "");
      img.addEventListener("click", () => set("cursor", i));
      card.append(img);
      const buttons = el("div", "tlw-lb-buttons");
      classes.forEach((c, k) => {
        const b = el("button", "tlw-lb-class" + (choices[i] === c ? " tlw-lb-chosen" : ""),
          `${k + 1} ${c}`);
        b.dataset.label = c;
        b.disabled = busy;
        b.addEventListener("click", () => choose(i, c));
        buttons.append(b);
      });
      card.append(buttons);
      grid.append(card);
    });
    main.append(grid);
    const hist = model.get("history");
    if (hist.length) {
      const side = el("div", "tlw-lb-side");
      const acc = model.get("accuracy");
      side.append(el("div", "tlw-lb-acc", acc === null ? "" : `held-out accuracy ${(100 * acc).toFixed(1)}%`));
      const chart = el("div", "tlw-lb-chart");
      chart.innerHTML = model.get("chart_html");  // the course's one chart, drawn in the kernel
      side.append(chart);
      main.append(side);
    }
    root.append(main);
    root.append(el("div", "tlw-lb-help",
      `keys: 1..${Math.min(classes.length, 9)} label the framed image, ←/→ move, Backspace clears`));
  }

  root.addEventListener("keydown", (e) => {
    const n = model.get("batch").length;
    const i = model.get("cursor");
    if (!n || model.get("busy") || e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    const k = parseInt(e.key, 10);
    const classes = model.get("classes");
    if (k >= 1 && k <= Math.min(9, classes.length)) {
      choose(i, classes[k - 1]);
    } else if (e.key === "ArrowRight" || e.key === "ArrowDown") {
      set("cursor", Math.min(i + 1, n - 1));
    } else if (e.key === "ArrowLeft" || e.key === "ArrowUp") {
      set("cursor", Math.max(i - 1, 0));
    } else if (e.key === "Backspace") {
      choose(i, "");
      set("cursor", i);
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
  });

  const names = ["classes", "strategies", "strategy", "batch_size", "batch", "choices", "cursor",
    "n_labelled", "n_pool", "history", "chart_html", "accuracy", "status", "error", "busy", "can_demo",
    "accepts_uploads"];
  names.forEach((n) => model.on(`change:${n}`, draw));
  draw();
}

export default { render };
