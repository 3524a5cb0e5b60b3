/* heartml web page: builds the form from GET model/info (the input fields of the dataset spec
 * inside the served package: names, labels, allowed values, groups, which may be unknown, the
 * risk bands), scores it with POST predict/explain and shows the probability, risk band, the
 * fields the model imputed, the features that moved the estimate and the model. Vanilla JS,
 * same-origin requests only; URLs are relative so that the page also works behind a path prefix.
 *
 * The form follows the served model: model/info is asked again every POLL_MS, and whenever an
 * answer comes from another model version (or a 422 names a field the form does not have); a
 * new spec hash rebuilds the form, keeping the values of the fields that are still there.
 *
 * One request per submit: predict/explain answers everything predict does (prediction,
 * probability, risk_level, imputed fields, model name and version, request id) plus the
 * contributions. Calling both would count every page submission twice in the service's drift
 * window, metrics and prediction log. A server without the explain route (404) falls back to
 * predict alone.
 */
(function () {
  "use strict";

  const TOP_CONTRIBUTIONS = 6;
  const POLL_MS = 15000;

  const form = document.getElementById("patient-form");
  const submitButton = document.getElementById("submit");
  const alertBox = document.getElementById("form-alert");
  const resultBox = document.getElementById("result");
  const emptyBox = document.getElementById("result-empty");
  const staleNote = document.getElementById("stale-note");
  const SITE_FIELD = "site"; // the request's optional site (not a model input)

  let modelInfo = null; // the last GET model/info
  let FIELDS = []; // modelInfo.fields: the form's fields, in model order
  let BY_NAME = {};
  let busy = false;
  let retry = null;

  // ---------------------------------------------------------------------------------------
  // Words

  function capitalised(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  function riskWords(label) {
    return `${capitalised(String(label).replace(/_/g, " "))} risk`;
  }

  function percent(probability) {
    return `${(probability * 100).toFixed(1)}%`;
  }

  function bands() {
    return (modelInfo && modelInfo.risk_levels) || [];
  }

  // A band's colour by its place: the first is "low", the last "high", any between "moderate".
  function toneOf(label) {
    const list = bands();
    const index = list.findIndex((band) => band.label === label);
    if (index <= 0) return "low";
    return index === list.length - 1 ? "high" : "moderate";
  }

  // ---------------------------------------------------------------------------------------
  // The form

  function element(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  function signed(value) {
    return value < 0 ? `−${-value}` : String(value);
  }

  function rangeText(field) {
    if (field.codes) return "";
    return `${signed(field.minimum)} to ${field.maximum}${field.unit ? ` ${field.unit}` : ""}`;
  }

  function buildField(field) {
    const id = `f-${field.name}`;
    const hintId = `${id}-hint`;
    const errorId = `${id}-error`;
    const hintText = [field.description, rangeText(field)].filter(Boolean).join(" · ");
    const describedBy = [hintText ? hintId : null, errorId].filter(Boolean).join(" ");

    let control;
    if (field.codes) {
      control = element("select", { id, name: field.name, "aria-describedby": describedBy });
      for (const { code, label } of field.codes) {
        control.append(element("option", { value: code, text: label }));
      }
    } else {
      control = element("input", {
        id,
        name: field.name,
        type: "number",
        inputmode: "decimal",
        min: field.minimum,
        max: field.maximum,
        step: field.step,
        "aria-describedby": describedBy,
      });
    }
    const parts = [control];
    if (!field.codes && field.unit) parts.push(element("span", { className: "unit", text: field.unit }));
    if (!field.required) {
      const unknown = element("input", {
        type: "checkbox",
        id: `${id}-unknown`,
        className: "unknown-toggle",
        "data-for": field.name,
      });
      unknown.addEventListener("change", () => {
        control.disabled = unknown.checked;
        if (!unknown.checked) control.focus();
      });
      parts.push(
        element("label", { className: "unknown", for: `${id}-unknown` }, [
          unknown,
          document.createTextNode("unknown"),
        ]),
      );
    }
    const label = element("label", { for: id, className: "field-label", text: field.label });
    return element("div", { className: `field field-${field.kind}`, "data-field": field.name }, [
      label,
      element("div", { className: "input-row" }, parts),
      hintText ? element("p", { id: hintId, className: "field-hint", text: hintText }) : null,
      element("p", { id: errorId, className: "field-error", hidden: true }),
    ]);
  }

  // The groups in the order the spec first names them; fields without a group last.
  function groups() {
    const order = [];
    for (const field of FIELDS) if (!order.includes(field.group)) order.push(field.group);
    return order.sort((a, b) => (a === "") - (b === ""));
  }

  function buildForm() {
    const container = document.getElementById("form-fields");
    container.replaceChildren();
    for (const group of groups()) {
      const fields = FIELDS.filter((field) => field.group === group);
      container.append(
        element("fieldset", { className: "group" }, [
          element("legend", { text: group || "Other inputs" }),
          element("div", { className: "field-grid" }, fields.map(buildField)),
        ]),
      );
    }
  }

  function setValue(field, value) {
    const control = form.elements[field.name];
    const unknown = document.getElementById(`f-${field.name}-unknown`);
    const isUnknown = value === null;
    if (unknown) {
      unknown.checked = isUnknown;
      control.disabled = isUnknown;
    }
    if (!isUnknown) control.value = String(value);
  }

  function fillExample() {
    for (const field of FIELDS) setValue(field, field.example);
    clearErrors();
  }

  // Called with the form's earlier values after a rebuild: fields still there keep them.
  function restore(values) {
    for (const field of FIELDS) {
      if (Object.prototype.hasOwnProperty.call(values, field.name)) setValue(field, values[field.name]);
    }
  }

  function currentValues() {
    const values = {};
    for (const field of FIELDS) {
      const control = form.elements[field.name];
      const unknown = document.getElementById(`f-${field.name}-unknown`);
      if (!control) continue;
      values[field.name] = unknown && unknown.checked ? null : control.value;
    }
    return values;
  }

  // The form as the API's JSON body: numbers, null for unknown. Values are not range-checked
  // here: the service validates and its 422 names the field, which is shown next to it.
  function readForm() {
    const body = {};
    const problems = [];
    for (const field of FIELDS) {
      const control = form.elements[field.name];
      const unknown = document.getElementById(`f-${field.name}-unknown`);
      if (unknown && unknown.checked) {
        body[field.name] = null;
      } else if (control.validity && control.validity.badInput) {
        problems.push({ field: field.name, message: `${field.label} must be a number` });
      } else if (String(control.value).trim() === "") {
        problems.push({
          field: field.name,
          message: `Enter the ${field.label.toLowerCase()}` +
            (field.required ? "" : ", or tick “unknown”") +
            (field.codes ? "" : ` (${rangeText(field)})`),
        });
      } else {
        body[field.name] = Number(control.value);
      }
    }
    // Not a model input: the site whose calibration applies (the server checks its name).
    const site = form.elements[SITE_FIELD].value.trim();
    if (site) body[SITE_FIELD] = site;
    return { body, problems };
  }

  function showTexts() {
    const dataset = modelInfo.dataset;
    const what = capitalised(dataset.record_title);
    document.getElementById("page-title").textContent = `${capitalised(dataset.positive_label)} risk`;
    document.title = `${capitalised(dataset.positive_label)} risk · heartml`;
    document.getElementById("page-tagline").textContent =
      `An estimate from ${FIELDS.length} measurements · ${dataset.title}`;
    document.getElementById("form-title").textContent = what;
    document.getElementById("form-lede").textContent =
      `Prefilled with the example ${dataset.record_title} of the model's dataset spec. Tick ` +
      "“unknown” for a value that was not measured: the model fills it in as in training, and " +
      "the result says so.";
    document.getElementById("reset-example").textContent = `Reset to the example ${dataset.record_title}`;
    document.getElementById("probability-caption").textContent =
      `estimated probability of ${dataset.positive_label}`;
    buildGauge();
  }

  function buildGauge() {
    const track = document.getElementById("gauge-track");
    const scale = document.getElementById("gauge-scale");
    const legend = document.getElementById("gauge-legend");
    track.replaceChildren();
    legend.replaceChildren();
    const edges = [0];
    for (const band of bands()) {
      const upper = band.below === null ? 1 : band.below;
      track.append(element("span", {
        className: `gauge-band ${toneOf(band.label)}`,
        style: `width:${(upper - band.minimum) * 100}%`,
      }));
      legend.append(element("span", {}, [
        element("i", { className: `swatch ${toneOf(band.label)}` }),
        document.createTextNode(band.label.replace(/_/g, " ")),
      ]));
      edges.push(upper);
    }
    scale.replaceChildren(
      ...edges.map((edge) => element("span", { style: `left:${edge * 100}%`, text: `${Math.round(edge * 100)}%` })),
    );
  }

  function bandsText() {
    return bands()
      .map((band) => band.below === null
        ? `${band.label} ${percent(band.minimum)} and above`
        : `${band.label} below ${percent(band.below)}`)
      .join(", ");
  }

  // ---------------------------------------------------------------------------------------
  // Errors

  function clearErrors() {
    alertBox.hidden = true;
    alertBox.replaceChildren();
    for (const node of form.querySelectorAll(".field-error")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    for (const node of form.querySelectorAll(".field.invalid")) node.classList.remove("invalid");
  }

  function showAlert(text) {
    alertBox.replaceChildren(document.createTextNode(text));
    alertBox.hidden = false;
  }

  // A 422 message in the page's words: the field's label instead of its API name, "unknown"
  // instead of JSON's null.
  function plainMessage(name, message) {
    const field = BY_NAME[name];
    let text = String(message);
    if (field && text.startsWith(name + " ")) text = field.label + text.slice(name.length);
    else if (field) text = `${field.label}: ${text}`;
    return text.replace(/, or null when unknown/g, ", or unknown");
  }

  function markInvalid(name, message) {
    const control = form.elements[name];
    const box = document.getElementById(`f-${name}-error`);
    box.textContent = message;
    box.hidden = false;
    control.setAttribute("aria-invalid", "true");
    control.closest(".field").classList.add("invalid");
  }

  function showFieldErrors(errors) {
    const general = [];
    let first = null;
    for (const error of errors) {
      const name = String(error.field || "");
      const field = BY_NAME[name];
      if (name === SITE_FIELD) {
        markInvalid(name, error.message || String(error));
        first = first || form.elements[name];
        continue;
      }
      if (!field) {
        general.push(error.message || String(error));
        continue;
      }
      markInvalid(name, plainMessage(name, error.message));
      first = first || form.elements[name];
    }
    const count = errors.length - general.length;
    const summary = [];
    if (count) summary.push(`Please correct ${count === 1 ? "the field" : `the ${count} fields`} marked in the form.`);
    summary.push(...general);
    showAlert(summary.join(" "));
    if (first) first.focus();
    return general.length > 0;
  }

  // ---------------------------------------------------------------------------------------
  // The service

  async function callJson(path, body) {
    const response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? { Accept: "application/json" } : {
        Accept: "application/json",
        "Content-Type": "application/json",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_ignored) {
      data = null;
    }
    return { status: response.status, ok: response.ok, data };
  }

  function describeFailure(reply) {
    const detail = reply.data && typeof reply.data.detail === "string" ? reply.data.detail : "";
    const rid = reply.data && reply.data.request_id ? ` (request id ${reply.data.request_id})` : "";
    if (reply.status === 503) return `The model is not ready yet${detail ? `: ${detail}` : ""}. Try again in a few seconds.`;
    if (reply.status >= 500) return `The service had an unexpected error${rid}. Please try again.`;
    return `The service refused the request (HTTP ${reply.status})${detail ? `: ${detail}` : ""}${rid}.`;
  }

  // Returns true when the form was (re)built for another spec.
  async function loadModelInfo() {
    clearTimeout(retry);
    try {
      const reply = await callJson("model/info");
      if (!reply.ok) {
        if (!modelInfo) document.getElementById("model-name").textContent = "not loaded yet";
        retry = setTimeout(loadModelInfo, 5000);
        return false;
      }
      const info = reply.data;
      const rebuilt = !modelInfo || modelInfo.spec_hash !== info.spec_hash;
      const earlier = modelInfo ? currentValues() : null;
      modelInfo = info;
      if (rebuilt) {
        FIELDS = info.fields;
        BY_NAME = Object.fromEntries(FIELDS.map((field) => [field.name, field]));
        buildForm();
        fillExample();
        if (earlier) {
          restore(earlier);
          markStale();
          showAlert("The served model changed its inputs: the form now asks for the fields of the new model.");
        }
        form.dataset.specHash = info.spec_hash;
        showTexts();
        submitButton.disabled = false;
      }
      showModel(info.name, info.version);
      const defaultSite = info.calibrations && info.calibrations.default_site;
      form.elements[SITE_FIELD].placeholder = defaultSite ? `${defaultSite} (this service's default)` : "none";
      retry = setTimeout(loadModelInfo, POLL_MS);
      return rebuilt;
    } catch (_error) {
      if (!modelInfo) document.getElementById("model-name").textContent = "service unreachable";
      retry = setTimeout(loadModelInfo, 5000);
      return false;
    }
  }

  function showModel(name, version) {
    document.getElementById("model-name").textContent = name;
    document.getElementById("model-version").textContent = version;
  }

  async function submit(event) {
    event.preventDefault();
    if (busy || !modelInfo) return;
    clearErrors();
    const { body, problems } = readForm();
    if (problems.length) {
      showFieldErrors(problems);
      return;
    }
    busy = true;
    submitButton.disabled = true;
    submitButton.textContent = "Estimating…";
    form.setAttribute("aria-busy", "true");
    try {
      let reply = await callJson("predict/explain", body);
      if (reply.status === 404 || reply.status === 405) reply = await callJson("predict", body);
      if (reply.ok) {
        showResult(reply.data);
      } else if (reply.status === 422 && Array.isArray(reply.data && reply.data.detail)) {
        hideResult();
        const unknownFields = showFieldErrors(reply.data.detail);
        // A field the form does not know: the served model may have changed its inputs.
        if (unknownFields) await loadModelInfo();
      } else {
        showAlert(describeFailure(reply));
      }
    } catch (_error) {
      showAlert("Could not reach the prediction service. Check that it is running and try again.");
    } finally {
      busy = false;
      submitButton.disabled = false;
      submitButton.textContent = "Estimate risk";
      form.removeAttribute("aria-busy");
    }
  }

  // ---------------------------------------------------------------------------------------
  // The result

  function valueText(name, value) {
    const field = BY_NAME[name];
    if (value === null || value === undefined) return "unknown";
    if (!field) return String(value);
    if (field.codes) {
      const match = field.codes.find((item) => item.code === value);
      return match ? match.label : String(value);
    }
    const shown = Number(value).toLocaleString("en", { maximumFractionDigits: 1 });
    return field.unit ? `${shown} ${field.unit}` : shown;
  }

  function hideResult() {
    resultBox.hidden = true;
    emptyBox.hidden = false;
  }

  function showResult(data) {
    const probability = data.probability;
    const risk = data.risk_level;
    const tone = toneOf(risk);
    document.getElementById("probability").textContent = percent(probability);
    const badge = document.getElementById("risk-level");
    badge.textContent = riskWords(risk);
    badge.className = `risk-badge ${tone}`;
    resultBox.dataset.risk = risk;
    resultBox.dataset.tone = tone;

    const clamped = Math.min(Math.max(probability, 0), 1);
    document.getElementById("gauge-marker").style.left = `${clamped * 100}%`;
    document.getElementById("gauge").setAttribute(
      "aria-label",
      `Probability ${percent(probability)} on a scale from 0 to 100%: ${riskWords(risk)} ` +
        `(bands: ${bandsText()})`,
    );

    const imputed = Array.isArray(data.imputed_fields) ? data.imputed_fields : [];
    const note = document.getElementById("imputed-note");
    note.textContent = imputed.length ? data.note || `Imputed: ${imputed.join(", ")}` : "";
    note.hidden = imputed.length === 0;
    note.dataset.fields = imputed.join(",");

    const dataset = modelInfo.dataset;
    const threshold = typeof modelInfo.threshold === "number" ? modelInfo.threshold : null;
    const verdict = data.prediction === 1 ? dataset.positive_label : dataset.negative_label;
    document.getElementById("prediction-line").replaceChildren(
      document.createTextNode(
        threshold === null ? "Model decision: " : `Model decision at its ${percent(threshold)} threshold: `,
      ),
      element("strong", { text: verdict }),
    );

    // Which site calibration shaped the estimate, or that the site has none.
    const calibration = document.getElementById("calibration-note");
    calibration.textContent = data.calibration ? data.calibration.detail : "";
    calibration.hidden = !data.calibration;

    showContributions(data.contributions, imputed);
    showModel(data.model_name, data.model_version);
    if (modelInfo.version !== data.model_version) loadModelInfo();
    const algorithm = modelInfo.version === data.model_version
      ? ` (${modelInfo.algorithm.replace(/_/g, " ")})`
      : "";
    document.getElementById("result-meta").textContent =
      `Scored by ${data.model_name} version ${data.model_version}${algorithm} · request ${data.request_id}`;

    staleNote.hidden = true;
    resultBox.classList.remove("stale");
    emptyBox.hidden = true;
    resultBox.hidden = false;
    // On a narrow screen the result is below the form: bring it into view.
    const panel = resultBox.closest(".panel");
    if (panel.getBoundingClientRect().top > window.innerHeight) {
      panel.scrollIntoView({ block: "start" });
    }
  }

  function showContributions(contributions, imputed) {
    const section = document.getElementById("explanation");
    const list = document.getElementById("contributions");
    list.replaceChildren();
    if (!Array.isArray(contributions)) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    const moved = contributions
      .filter((item) => Math.abs(item.contribution) >= 0.0005)
      .sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution))
      .slice(0, TOP_CONTRIBUTIONS);
    document.getElementById("no-contributions").hidden = moved.length > 0;
    const largest = Math.max(...moved.map((item) => Math.abs(item.contribution)), 1e-9);
    for (const item of moved) {
      const up = item.contribution > 0;
      const points = Math.abs(item.contribution * 100).toFixed(1);
      const label = (BY_NAME[item.feature] && BY_NAME[item.feature].label) || item.label;
      const width = `${(Math.abs(item.contribution) / largest) * 100}%`;
      const bar = element("span", { className: "bar", style: `width:${width}` });
      const value = imputed.includes(item.feature)
        ? "unknown (imputed)"
        : valueText(item.feature, item.value);
      list.append(
        element("li", {
          className: `contribution ${up ? "up" : "down"}`,
          "data-feature": item.feature,
          "data-direction": up ? "up" : "down",
        }, [
          element("div", { className: "contribution-text" }, [
            element("span", { className: "contribution-label", text: label }),
            element("span", {
              className: "contribution-value",
              text: `${value} · typical: ${valueText(item.feature, item.reference_value)}`,
            }),
          ]),
          element("div", { className: "diverging", "aria-hidden": "true" }, [
            element("span", { className: "half left" }, [up ? null : bar]),
            element("span", { className: "half right" }, [up ? bar : null]),
          ]),
          element("span", { className: "contribution-amount" }, [
            element("span", { className: "arrow", "aria-hidden": "true", text: up ? "▲" : "▼" }),
            element("span", { className: "direction", text: up ? "raises" : "lowers" }),
            document.createTextNode(` ${up ? "+" : "−"}${points} pts`),
          ]),
        ]),
      );
    }
  }

  function markStale() {
    if (!resultBox.hidden) {
      staleNote.hidden = false;
      resultBox.classList.add("stale");
    }
  }

  // ---------------------------------------------------------------------------------------

  submitButton.disabled = true; // until the form is built
  form.addEventListener("submit", submit);
  form.addEventListener("input", markStale);
  form.addEventListener("change", markStale);
  document.getElementById("reset-example").addEventListener("click", () => {
    fillExample();
    markStale();
  });
  loadModelInfo();
})();
