// The setup forms: the target card, the run slots' tabs and each slot's config form. Like the
// other views they read the state and call the controller's handlers; they never change the
// state or talk to the server themselves. Fields, sections and their order come from /api/meta.

import { $, el } from "./dom.js";
import {
  SLOT_COLOURS, SLOT_NAMES, MAX_SLOTS, builtin, fieldInfo, formatField, getPath, isTargetField, presetConfig, sameValue, slotConfig,
} from "./state.js";

// Held-out pixels are set in the target card: every run on the page fits the same pixels and is scored on the same held-out ones.
const HOLDOUT = "data.holdout";

// A text input for a field; a field with suggestions (/api/meta) offers them in a <datalist>, and any other value can still be typed.
function textInput(info, value, onChange) {
  const list = info.suggestions?.length ? `suggest-${info.key.replaceAll(".", "-")}` : null;
  const input = el("input", { type: "text", value: formatField(value), list, autocomplete: list ? "off" : null, spellcheck: "false", onchange: onChange });
  return list ? [input, el("datalist", { id: list }, ...info.suggestions.map((v) => el("option", { value: v })))] : [input];
}

export class Forms {
  constructor(handlers) {
    this.h = handlers;
    this.targetKind = null;      // the target card's body is rebuilt when the kind changes
  }

  // -- target card -----------------------------------------------------------------------------

  renderTarget(state) {
    const t = state.target;
    for (const b of document.querySelectorAll("#target-tabs button")) b.setAttribute("aria-selected", String(b.dataset.kind === t.kind));
    $("#target-tabs button[data-kind=builtin]").textContent = builtin(state).text;
    const mode = $("#target-mode");
    if (!mode.options.length) {
      for (const [m, facts] of Object.entries(state.meta.modes)) mode.append(el("option", { value: m, text: m, title: facts.description }));
      mode.title = Object.entries(state.meta.modes).map(([m, facts]) => `${m}: ${facts.description}`).join("\n");
    }
    mode.value = t.mode;
    const body = $("#target-body");
    if (this.targetKind !== t.kind || t.kind === "upload") {
      this.targetKind = t.kind;
      body.replaceChildren(...this.targetBody(state));
    } else if (t.kind === "text") {
      for (const input of body.querySelectorAll("[data-target-field]")) {
        if (document.activeElement !== input) input.value = formatField(t[input.dataset.targetField]);
      }
    }
    this.renderHoldout(state);
  }

  // The held-out pixels field (built once), its value, and the server's refusal of it.
  renderHoldout(state) {
    const row = $("#target-holdout");
    const info = fieldInfo(state, HOLDOUT);
    if (!row.childElementCount) {
      row.title = info.doc;
      row.append(el("span", { class: "field-name", text: "held-out pixels" }), ...textInput(info, state.target.holdout, (e) => this.h.holdout(e.target.value)));
      row.querySelector("input").name = HOLDOUT;
    }
    const input = row.querySelector("input");
    if (document.activeElement !== input) input.value = formatField(state.target.holdout);
    const err = state.fieldError?.field === HOLDOUT ? state.fieldError.error : null;
    row.classList.toggle("changed", state.target.holdout !== info.default);
    row.classList.toggle("invalid", Boolean(err));
    row.querySelector(".field-error")?.remove();
    if (err) row.append(el("span", { class: "field-error", text: err }));
  }

  targetBody(state) {
    const t = state.target;
    if (t.kind === "builtin") {
      const b = builtin(state);
      return [el("p", { class: "hint", text: `The original experiment's picture: ${b.text} in bold black letters, ${b.width} x ${b.height} pixels.` })];
    }
    if (t.kind === "text") {
      const input = (field, attrs) => el("input", { "data-target-field": field, value: formatField(t[field]), oninput: (e) => this.h.targetField(field, e.target.value), ...attrs });
      return [
        el("textarea", { id: "target-text", rows: 2, "data-target-field": "text", placeholder: "text to fit", oninput: (e) => this.h.targetField("text", e.target.value) }, t.text),
        el("div", { class: "grid3" },
          el("label", {}, "width", input("width", { type: "number", min: 2, id: "target-width" })),
          el("label", {}, "height", input("height", { type: "number", min: 2, id: "target-height" })),
          el("label", {}, "font size", input("font_size", { type: "number", min: 1, placeholder: "auto" }))),
      ];
    }
    const limits = state.meta.limits;
    const zone = el("div", {
      class: "dropzone", id: "dropzone", tabindex: 0, role: "button",
      onclick: () => this.h.chooseFile(),
      onkeydown: (e) => (e.key === "Enter" || e.key === " ") && this.h.chooseFile(),
      ondragover: (e) => { e.preventDefault(); zone.classList.add("over"); },
      ondragleave: () => zone.classList.remove("over"),
      ondrop: (e) => { e.preventDefault(); zone.classList.remove("over"); if (e.dataTransfer.files[0]) this.h.upload(e.dataTransfer.files[0]); },
    },
    el("strong", { text: t.upload ? `✓ ${t.uploadName || "picture"}` : "Drop a picture here" }),
    el("span", { text: t.upload ? "drop another to replace it" : "or click to choose one" }),
    el("small", { text: `${limits.upload_formats.join(", ")} · up to ${Math.round(limits.upload_bytes / 2 ** 20)} MB and ${(limits.pixels / 1e6).toFixed(1)} megapixels` }));
    return [zone];
  }

  // -- run slots and their config forms -------------------------------------------------------------

  renderSlots(state) {
    const tabs = $("#slot-tabs");
    tabs.replaceChildren(
      ...state.slots.map((slot, i) => el("button", {
        role: "tab", "aria-selected": String(i === state.active), style: `--slot: ${SLOT_COLOURS[i]}`,
        class: state.fieldError?.slot === i ? "invalid" : null, onclick: () => this.h.selectSlot(i),
      }, el("span", { class: "swatch" }), `${SLOT_NAMES[i]} · ${slot.preset}`, Object.keys(slot.overrides).length ? "*" : "",
      state.slots.length > 1 ? el("span", { class: "close", title: "remove this run from the comparison", text: "×", onclick: (e) => { e.stopPropagation(); this.h.removeSlot(i); } }) : null)),
      state.slots.length < MAX_SLOTS ? el("button", { class: "add", title: "add a run to compare", onclick: () => this.h.addSlot(), text: "+ compare" }) : null,
    );
    this.renderForm(state);
  }

  renderForm(state) {
    const i = state.active;
    const slot = state.slots[i];
    const cfg = slotConfig(state, slot);
    const base = presetConfig(state, slot.preset);
    const presetSelect = el("select", { id: "preset-select", onchange: (e) => this.h.preset(i, e.target.value) },
      ...Object.keys(state.meta.presets).map((name) => el("option", { value: name, selected: name === slot.preset, text: name })));
    const rows = new Map();
    for (const info of state.meta.fields) {
      if (isTargetField(state, info.key) || info.key === "preset") continue;
      const section = info.key.includes(".") ? info.key.split(".")[0] : "";
      if (!rows.has(section)) rows.set(section, []);
      rows.get(section).push(this.fieldRow(state, i, info, getPath(cfg, info.key), getPath(base, info.key)));
    }
    $("#slot-form").replaceChildren(
      el("label", { class: "row preset-row" }, "preset", presetSelect),
      el("p", { class: "hint preset-description", text: state.meta.presets[slot.preset]?.description ?? "" }),
      ...state.meta.sections.filter((s) => rows.has(s.key)).map((s) => el("details", { class: "section", open: s.open, title: s.doc || null },
        el("summary", { text: s.title }), ...rows.get(s.key))),
    );
    this.updateRelevance(state);
  }

  // Hide fields that do not matter for the current choices (w0 without siren or gauss, sigma without Fourier features).
  updateRelevance(state) {
    const cfg = slotConfig(state, state.slots[state.active]);
    for (const info of state.meta.fields) {
      if (!info.applies_when) continue;
      const [key, values] = info.applies_when;
      const row = document.querySelector(`#slot-form .field[data-key="${info.key}"]`);
      if (row) row.style.display = values.includes(getPath(cfg, key)) ? "" : "none";
    }
  }

  fieldRow(state, slotIndex, info, value, presetValue) {
    const name = info.key.includes(".") ? info.key.split(".").slice(1).join(".") : info.key;
    const changed = !sameValue(value, presetValue);
    const err = state.fieldError?.slot === slotIndex && state.fieldError.field === info.key ? state.fieldError.error : null;
    const onChange = (e) => this.h.field(slotIndex, info.key, e.target.value, e.target.checked, e.target);
    let input, extra = null;
    if (info.choices) {
      input = el("select", { onchange: onChange }, ...info.choices.map((c) => el("option", { value: c, text: c, selected: c === value })));
    } else if (info.type === "bool") {
      input = el("input", { type: "checkbox", checked: Boolean(value), onchange: onChange });
    } else if (info.suggestions?.length) {
      [input, extra] = textInput(info, value, onChange);
    } else {
      const numeric = info.type === "int" || info.type === "float";
      input = el("input", { type: numeric ? "number" : "text", step: info.type === "float" ? "any" : null, value: formatField(value),
        placeholder: info.type.endsWith("or null") ? "none" : null, onchange: onChange });
    }
    input.name = info.key;
    input.title = info.doc;
    return el("label", { class: `field${changed ? " changed" : ""}${err ? " invalid" : ""}`, title: info.doc, "data-key": info.key },
      el("span", { class: "field-name", text: name }), input, extra, err ? el("span", { class: "field-error", text: err }) : null);
  }

  markField(target, changed, error) {
    const label = target.closest(".field");
    label.classList.toggle("changed", changed);
    label.classList.toggle("invalid", Boolean(error));
    label.querySelector(".field-error")?.remove();
    if (error) label.append(el("span", { class: "field-error", text: error }));
  }
}
