// The Run page: a form built from the job's JSON schema (data-schema on #run-form), sent as
// JSON with the page's CSRF token; the server's 422 errors (JSON Pointers) are shown next to
// their fields. After a submit the new task is polled once a second until it ends.
// Fields the builder cannot render become a JSON textarea of their own.
"use strict";

(function () {
  const form = document.getElementById("run-form");
  if (!form) return;
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const schema = JSON.parse(form.dataset.schema || "{}");
  const job = form.dataset.job;
  const fieldsBox = document.getElementById("payload-fields");
  const rawToggle = document.getElementById("raw-toggle");
  const rawText = document.getElementById("raw-payload");
  const errorsBox = document.getElementById("run-errors");
  const result = document.getElementById("run-result");
  const FINAL = new Set(["completed", "failed", "cancelled"]);
  const POLL_MS = 1000;
  const REQUIRED = /^'(.+)' is a required property$/;
  let root = null;
  let counter = 0;
  let following = 0;

  // --- the schema ------------------------------------------------------------------
  function lookup(ref) {
    if (ref === "#") return schema;
    let node = schema;
    for (const part of ref.slice(2).split("/")) {
      const key = decodeURIComponent(part).replace(/~1/g, "/").replace(/~0/g, "~");
      node = node && typeof node === "object" ? node[key] : undefined;
    }
    return node;
  }

  // Local $refs followed, and "X or null" (pydantic's Optional) read as X.
  function resolve(node) {
    for (let hops = 0; node && typeof node.$ref === "string"; hops++) {
      if (hops > 16 || !node.$ref.startsWith("#")) return null;
      const target = lookup(node.$ref);
      if (!target || typeof target !== "object") return null;
      const rest = Object.assign({}, node);
      delete rest.$ref;
      node = Object.assign({}, target, rest);
    }
    if (!node || typeof node !== "object") return null;
    const alternatives = node.anyOf || node.oneOf;
    if (Array.isArray(alternatives)) {
      const others = alternatives.filter(function (a) { return !(a && a.type === "null"); });
      if (others.length !== 1 || others.length === alternatives.length) return node;
      const rest = Object.assign({}, node);
      delete rest.anyOf;
      delete rest.oneOf;
      const inner = resolve(others[0]);
      return inner ? Object.assign({}, inner, rest) : null;
    }
    if (Array.isArray(node.type)) {
      const types = node.type.filter(function (t) { return t !== "null"; });
      if (types.length === 1) return Object.assign({}, node, { type: types[0] });
    }
    return node;
  }

  function primitive(value) {
    return value === null || ["string", "number", "boolean"].includes(typeof value);
  }

  function kindOf(node) {
    if (!node) return "raw";
    if (Array.isArray(node.enum) && node.enum.length > 0) {
      return node.enum.every(primitive) ? "enum" : "raw";
    }
    if (node.const !== undefined || node.anyOf || node.oneOf || node.allOf) return "raw";
    if (["string", "integer", "number", "boolean"].includes(node.type)) return node.type;
    if (node.type === "array") {
      const items = resolve(node.items);
      return ["string", "integer", "number", "boolean", "enum"].includes(kindOf(items)) ? "array" : "raw";
    }
    const isObject = node.type === "object" || node.type === undefined;
    if (isObject && node.properties && typeof node.properties === "object") return "object";
    return "raw";
  }

  // --- building fields -------------------------------------------------------------
  function element(tag, attributes, text) {
    const made = document.createElement(tag);
    Object.entries(attributes || {}).forEach(function (pair) { made.setAttribute(pair[0], pair[1]); });
    if (text !== undefined) made.textContent = text;
    return made;
  }

  function errorSpan(pointer) {
    const span = element("span", { class: "field-error", "data-error-for": pointer });
    span.hidden = true;
    return span;
  }

  function escapeKey(key) {
    return String(key).replace(/~/g, "~0").replace(/\//g, "~1");
  }

  // Every field reads as {value}, {omit: true} (not given) or {error}.
  function scalarInput(kind, node, initial, id) {
    if (kind === "enum") {
      const select = element("select", { id: id });
      select.appendChild(element("option", { value: "" }, "—"));
      node.enum.forEach(function (choice, index) {
        const label = typeof choice === "string" ? choice : JSON.stringify(choice);
        const option = element("option", { value: String(index) }, label);
        if (initial !== undefined && JSON.stringify(initial) === JSON.stringify(choice)) option.selected = true;
        select.appendChild(option);
      });
      return {
        control: select,
        read: function () {
          return select.value === "" ? { omit: true } : { value: node.enum[Number(select.value)] };
        },
      };
    }
    if (kind === "boolean") {
      const select = element("select", { id: id });
      ["", "true", "false"].forEach(function (v) {
        const option = element("option", { value: v }, v || "—");
        if (initial !== undefined && String(initial) === v) option.selected = true;
        select.appendChild(option);
      });
      return {
        control: select,
        read: function () { return select.value === "" ? { omit: true } : { value: select.value === "true" }; },
      };
    }
    if (kind === "integer" || kind === "number") {
      const input = element("input", { id: id, type: "number", step: kind === "integer" ? "1" : "any" });
      if (typeof node.minimum === "number") input.min = String(node.minimum);
      if (typeof node.maximum === "number") input.max = String(node.maximum);
      if (typeof initial === "number") input.value = String(initial);
      return {
        control: input,
        read: function () {
          const text = input.value.trim();
          if (text === "") return input.validity.badInput ? { error: "not a number" } : { omit: true };
          const value = Number(text);
          if (!Number.isFinite(value)) return { error: "not a number" };
          if (kind === "integer" && !Number.isInteger(value)) return { error: "must be a whole number" };
          return { value: value };
        },
      };
    }
    const input = element("input", { id: id, type: "text" });
    if (typeof initial === "string") input.value = initial;
    return {
      control: input,
      read: function () { return input.value === "" ? { omit: true } : { value: input.value }; },
    };
  }

  function rawInput(initial, id) {
    const area = element("textarea", { id: id, rows: "4", spellcheck: "false", class: "raw" });
    if (initial !== undefined) area.value = JSON.stringify(initial, null, 2);
    return {
      control: area,
      read: function () {
        if (area.value.trim() === "") return { omit: true };
        try { return { value: JSON.parse(area.value) }; } catch (e) { return { error: "not valid JSON" }; }
      },
    };
  }

  function arrayInput(node, initial, id) {
    const items = resolve(node.items);
    const itemKind = kindOf(items);
    const box = element("div", { class: "array", id: id });
    const list = element("div", { class: "items" });
    const rows = [];
    const add = element("button", { type: "button", class: "add" }, "+ add");
    function addRow(value) {
      const made = scalarInput(itemKind, items, value, id + "-" + (counter++));
      const row = element("div", { class: "item" });
      const remove = element("button", { type: "button", class: "remove", "aria-label": "remove" }, "×");
      row.append(made.control, remove);
      list.appendChild(row);
      rows.push(made);
      remove.addEventListener("click", function () { rows.splice(rows.indexOf(made), 1); row.remove(); });
    }
    (Array.isArray(initial) ? initial : []).forEach(addRow);
    add.addEventListener("click", function () { addRow(undefined); });
    box.append(list, add);
    return {
      control: box,
      read: function () {
        const values = [];
        for (const row of rows) {
          const got = row.read();
          if (got.error) return got;
          if (!got.omit) values.push(got.value);
        }
        return values.length === 0 && !Array.isArray(initial) ? { omit: true } : { value: values };
      },
    };
  }

  // Reads as {value, given, errors}: `value` holds what could be read even when some
  // fields could not (the raw toggle keeps it), `given` counts the fields filled in.
  function objectFields(node, pointer, values, box) {
    const required = new Set(Array.isArray(node.required) ? node.required : []);
    const children = Object.keys(node.properties).map(function (key) {
      const given = values && typeof values === "object" ? values[key] : undefined;
      const field = build(node.properties[key], pointer + "/" + escapeKey(key), key, required.has(key), given);
      box.appendChild(field.element);
      return { key: key, field: field, required: required.has(key) };
    });
    return function () {
      const value = {};
      const errors = [];
      let given = 0;
      children.forEach(function (child) {
        const got = child.field.read();
        if (got.errors) errors.push.apply(errors, got.errors);
        if (got.value !== undefined) value[child.key] = got.value;
        if (!got.omit) given++;
        else if (child.required) errors.push({ path: child.field.pointer, message: "required" });
      });
      return { value: value, given: given, errors: errors };
    };
  }

  function build(rawNode, pointer, key, required, given) {
    const node = resolve(rawNode);
    const kind = kindOf(node);
    const initial = given !== undefined ? given : node ? node.default : undefined;
    const title = (node && node.title) || key;
    const id = "field-" + (counter++);
    if (kind === "object") {
      const set = element("fieldset", { class: "object", "data-path": pointer });
      const legend = element("legend", {}, title);
      if (required) legend.appendChild(element("span", { class: "required", title: "required" }, " *"));
      set.appendChild(legend);
      if (node.description) set.appendChild(element("small", { class: "description" }, node.description));
      const readAll = objectFields(node, pointer, initial, set);
      set.appendChild(errorSpan(pointer));
      return {
        element: set,
        pointer: pointer,
        read: function () {
          const got = readAll();
          // An optional object left empty is left out, its own required fields with it.
          if (got.given === 0 && !required && initial === undefined) return { omit: true };
          return got.errors.length ? { value: got.value, errors: got.errors } : { value: got.value };
        },
      };
    }
    let made;
    if (kind === "array") made = arrayInput(node, initial, id);
    else if (kind === "raw") made = rawInput(initial, id);
    else made = scalarInput(kind, node, initial, id);
    const wrap = element("div", { class: "field", "data-path": pointer });
    const label = element("label", { for: id }, title);
    if (required) label.appendChild(element("span", { class: "required", title: "required" }, " *"));
    if (kind === "raw") label.appendChild(element("small", {}, " (JSON)"));
    made.control.setAttribute("name", pointer);
    wrap.append(label, made.control);
    if (node && node.description) wrap.appendChild(element("small", { class: "description" }, node.description));
    wrap.appendChild(errorSpan(pointer));
    return {
      element: wrap,
      pointer: pointer,
      read: function () {
        const got = made.read();
        return got.error ? { errors: [{ path: pointer, message: got.error }] } : got;
      },
    };
  }

  function render(values) {
    fieldsBox.replaceChildren();
    const node = resolve(schema);
    if (kindOf(node) !== "object") {
      root = null;
      rawToggle.checked = true;
      rawToggle.disabled = true;
      showRaw(true, values === undefined ? {} : values);
      return;
    }
    const readAll = objectFields(node, "/payload", values, fieldsBox);
    root = {
      read: function () {
        const got = readAll();
        return got.errors.length ? { value: got.value, errors: got.errors } : { value: got.value };
      },
    };
  }

  function showRaw(on, values) {
    fieldsBox.hidden = on;
    rawText.hidden = !on;
    if (on) rawText.value = JSON.stringify(values, null, 2);
  }

  function readPayload() {
    return rawToggle.checked ? parseRaw() : root.read();
  }

  function parseRaw() {
    try {
      const value = JSON.parse(rawText.value);
      if (value && typeof value === "object" && !Array.isArray(value)) return { value: value };
      return { errors: [{ path: "/payload", message: "must be a JSON object" }] };
    } catch (e) {
      return { errors: [{ path: "/payload", message: "not valid JSON: " + e.message }] };
    }
  }

  rawToggle.addEventListener("change", function () {
    if (rawToggle.checked) {
      showRaw(true, root.read().value);
      return;
    }
    const got = parseRaw();
    if (got.errors) {
      rawToggle.checked = true;
      showErrors(got.errors, "Fix the JSON before leaving raw mode");
      return;
    }
    render(got.value);
    showRaw(false);
  });

  // --- errors ----------------------------------------------------------------------
  function clearErrors() {
    errorsBox.hidden = true;
    errorsBox.replaceChildren();
    form.querySelectorAll("[data-error-for]").forEach(function (span) {
      span.hidden = true;
      span.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  // An error lands on the field of its pointer, or of the nearest enclosing pointer shown;
  // "'x' is a required property" is said of the object, but belongs to its field x.
  function spanFor(path, message) {
    const spans = new Map();
    form.querySelectorAll("[data-error-for]").forEach(function (span) {
      if (!span.parentElement.closest("[hidden]")) spans.set(span.dataset.errorFor, span);
    });
    const missing = REQUIRED.exec(message);
    let pointer = missing ? path + "/" + escapeKey(missing[1]) : path;
    while (pointer && !spans.has(pointer)) pointer = pointer.slice(0, pointer.lastIndexOf("/"));
    return spans.get(pointer || "/payload");
  }

  function showErrors(errors, summary) {
    clearErrors();
    errorsBox.appendChild(element("p", {}, summary));
    const list = element("ul");
    errors.forEach(function (error) {
      list.appendChild(element("li", {}, (error.path || "") + ": " + error.message));
      const span = spanFor(error.path || "/payload", error.message || "");
      if (!span) return;
      span.textContent = span.textContent ? span.textContent + "; " + error.message : error.message;
      span.hidden = false;
      const control = span.parentElement.querySelector("input, select, textarea");
      if (control) control.setAttribute("aria-invalid", "true");
    });
    if (errors.length) errorsBox.appendChild(list);
    errorsBox.hidden = false;
  }

  // --- submit and follow ---------------------------------------------------------------
  function readOptions(problems) {
    const room = form.elements.room_id.value.trim();
    if (!room) problems.push({ path: "/room_id", message: "required" });
    const text = form.elements.priority.value.trim();
    let priority = null;
    if (text !== "" || form.elements.priority.validity.badInput) {
      priority = Number(text);
      if (text === "" || !Number.isInteger(priority)) problems.push({ path: "/priority", message: "must be a whole number" });
    }
    return { room_id: room, priority: priority };
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const problems = [];
    const body = readOptions(problems);
    const payload = readPayload();
    if (payload.errors) problems.push.apply(problems, payload.errors);
    if (problems.length) {
      showErrors(problems, "Not sent: fix the marked fields");
      return;
    }
    clearErrors();
    body.payload = payload.value;
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    let response;
    let answer = {};
    try {
      response = await fetch("/dashboard/jobs/" + encodeURIComponent(job) + "/run", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.content : "" },
        body: JSON.stringify(body),
      });
      answer = await response.json();
    } catch (e) {
      /* the network or a body that is not JSON: said below */
    } finally {
      if (button) button.disabled = false;
    }
    if (!response || !response.ok) {
      const status = response ? response.status : "no answer";
      // A bad room id is a 400 without a list of errors; it still belongs to the room field.
      const errors = answer.errors ||
        (/invalid-room-id$/.test(answer.type || "") ? [{ path: "/room_id", message: answer.detail }] : []);
      showErrors(errors, "Refused (" + status + "): " + (answer.detail || "the server did not answer"));
      return;
    }
    follow(answer);
  });

  function show(task) {
    const field = function (name) { return result.querySelector('[data-field="' + name + '"]'); };
    field("task-id").textContent = task.id;
    field("task-link").href = "/dashboard/tasks/" + task.id;
    field("status").textContent = task.status;
    field("status").className = "pill " + task.status;
    field("room").textContent = task.room_id;
    field("progress").textContent = task.progress === null || task.progress === undefined
      ? "-"
      : Math.round(task.progress * 100) + "%" + (task.progress_message ? " · " + task.progress_message : "");
    field("error").textContent = task.error || "-";
    field("result").textContent = task.result === null || task.result === undefined
      ? "-"
      : JSON.stringify(task.result, null, 2);
  }

  function follow(task) {
    const mine = ++following;
    result.hidden = false;
    show(task);
    async function poll() {
      if (mine !== following) return;  // a newer submit took over
      let wait = POLL_MS;
      try {
        const response = await fetch("/dashboard/tasks/" + task.id + "/state", { credentials: "same-origin" });
        if (response.ok) {
          const now = await response.json();
          if (mine !== following) return;
          show(now);
          if (FINAL.has(now.status)) return;
        } else {
          wait = POLL_MS * 3;
        }
      } catch (e) {
        wait = POLL_MS * 3;
      }
      setTimeout(poll, wait);
    }
    if (!FINAL.has(task.status)) setTimeout(poll, POLL_MS);
  }

  render(undefined);
})();
