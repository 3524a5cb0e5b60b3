/* heartml web page: builds the patient form from the field table in index.html, scores it with
 * POST predict/explain and shows the probability, risk band, the features that moved it and
 * the model. Vanilla JS, same-origin requests only; URLs are relative so that the page also
 * works behind a path prefix.
 *
 * One request per submit: predict/explain answers everything predict does (prediction,
 * probability, risk_level, model name and version, request id) plus the contributions. Calling
 * both would count every page submission twice in the service's drift window, metrics and
 * prediction log. A server without the explain route (404) falls back to predict alone.
 */
(function () {
  "use strict";

  const FIELDS = JSON.parse(document.getElementById("heartml-fields").textContent);
  const BY_NAME = Object.fromEntries(FIELDS.map((field) => [field.name, field]));
  const GROUPS = [
    ["patient", "About the patient"],
    ["rest", "Symptoms and resting tests"],
    ["exercise", "Exercise stress test"],
    ["imaging", "Imaging"],
  ];
  const RISK_WORDS = { low: "Low risk", moderate: "Moderate risk", high: "High risk" };
  const TOP_CONTRIBUTIONS = 6;

  const form = document.getElementById("patient-form");
  const submitButton = document.getElementById("submit");
  const alertBox = document.getElementById("form-alert");
  const resultBox = document.getElementById("result");
  const emptyBox = document.getElementById("result-empty");
  const staleNote = document.getElementById("stale-note");

  let modelInfo = null;
  let busy = false;

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

  function rangeText(field) {
    const low = field.min < 0 ? `−${-field.min}` : String(field.min);
    return `${low} to ${field.max} ${field.unit}`;
  }

  function buildField(field) {
    const id = `f-${field.name}`;
    const hintId = `${id}-hint`;
    const errorId = `${id}-error`;
    const hintText = field.kind === "numeric"
      ? [field.hint, rangeText(field)].filter(Boolean).join(" · ")
      : field.hint;
    const describedBy = [hintText ? hintId : null, errorId].filter(Boolean).join(" ");

    let control;
    if (field.codes) {
      control = element("select", { id, name: field.name, "aria-describedby": describedBy });
      for (const [code, meaning] of field.codes) {
        control.append(element("option", { value: code, text: meaning }));
      }
      if (field.nullable) control.append(element("option", { value: "", text: "unknown" }));
    } else {
      control = element("input", {
        id,
        name: field.name,
        type: "number",
        inputmode: "decimal",
        min: field.min,
        max: field.max,
        step: field.step,
        "aria-describedby": describedBy,
      });
    }

    const label = element("label", { for: id, className: "field-label", text: field.label });
    let inputRow = control;
    if (!field.codes) {
      const parts = [control, element("span", { className: "unit", text: field.unit })];
      if (field.nullable) {
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
      inputRow = element("div", { className: "input-row" }, parts);
    }
    return element("div", { className: `field field-${field.kind}`, "data-field": field.name }, [
      label,
      inputRow,
      hintText ? element("p", { id: hintId, className: "field-hint", text: hintText }) : null,
      element("p", { id: errorId, className: "field-error", hidden: true }),
    ]);
  }

  function buildForm() {
    const container = document.getElementById("form-fields");
    container.replaceChildren();
    for (const [group, title] of GROUPS) {
      const fields = FIELDS.filter((field) => field.group === group);
      const fieldset = element("fieldset", { className: "group" }, [
        element("legend", { text: title }),
        element("div", { className: "field-grid" }, fields.map(buildField)),
      ]);
      container.append(fieldset);
    }
  }

  function fillExample() {
    for (const field of FIELDS) {
      form.elements[field.name].value = String(field.example);
      const unknown = document.getElementById(`f-${field.name}-unknown`);
      if (unknown) {
        unknown.checked = false;
        form.elements[field.name].disabled = false;
      }
    }
    clearErrors();
  }

  // The form as the API's JSON body: numbers, null for unknown. Values are not range-checked
  // here: the service validates and its 422 names the field, which is shown next to it.
  function readForm() {
    const body = {};
    const problems = [];
    for (const field of FIELDS) {
      const control = form.elements[field.name];
      const unknown = document.getElementById(`f-${field.name}-unknown`);
      if ((unknown && unknown.checked) || (field.codes && control.value === "")) {
        body[field.name] = null;
      } else if (control.validity && control.validity.badInput) {
        problems.push({ field: field.name, message: `${field.label} must be a number` });
      } else if (control.value.trim() === "") {
        problems.push({
          field: field.name,
          message: `Enter the ${field.label.toLowerCase()}` +
            (field.nullable ? ", or tick “unknown”" : "") + ` (${rangeText(field)})`,
        });
      } else {
        body[field.name] = Number(control.value);
      }
    }
    return { body, problems };
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
    return text.replace(/, or null when unknown/g, ", or unknown").replace(/got null$/, "got no value");
  }

  function showFieldErrors(errors) {
    const general = [];
    let first = null;
    for (const error of errors) {
      const name = String(error.field || "");
      const field = BY_NAME[name];
      if (!field) {
        general.push(error.message || String(error));
        continue;
      }
      const control = form.elements[name];
      const box = document.getElementById(`f-${name}-error`);
      box.textContent = plainMessage(name, error.message);
      box.hidden = false;
      control.setAttribute("aria-invalid", "true");
      control.closest(".field").classList.add("invalid");
      first = first || control;
    }
    const count = errors.length - general.length;
    const summary = [];
    if (count) summary.push(`Please correct ${count === 1 ? "the field" : `the ${count} fields`} marked in the form.`);
    summary.push(...general);
    showAlert(summary.join(" "));
    if (first) first.focus();
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

  async function loadModelInfo() {
    try {
      const reply = await callJson("model/info");
      if (!reply.ok) {
        document.getElementById("model-name").textContent = "not loaded yet";
        setTimeout(loadModelInfo, 5000);
        return;
      }
      modelInfo = reply.data;
      showModel(modelInfo.name, modelInfo.version);
    } catch (_error) {
      document.getElementById("model-name").textContent = "service unreachable";
      setTimeout(loadModelInfo, 5000);
    }
  }

  function showModel(name, version) {
    document.getElementById("model-name").textContent = name;
    document.getElementById("model-version").textContent = version;
  }

  async function submit(event) {
    event.preventDefault();
    if (busy) return;
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
        showFieldErrors(reply.data.detail);
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

  function percent(probability) {
    return `${(probability * 100).toFixed(1)}%`;
  }

  function valueText(name, value) {
    const field = BY_NAME[name];
    if (value === null || value === undefined) return "unknown";
    if (!field) return String(value);
    if (field.codes) {
      const match = field.codes.find(([code]) => code === value);
      return match ? match[1] : String(value);
    }
    return `${Number(value).toLocaleString("en", { maximumFractionDigits: 1 })} ${field.unit}`;
  }

  function referenceText(name, reference) {
    const field = BY_NAME[name];
    return `typical: ${valueText(name, reference)}`;
  }

  function hideResult() {
    resultBox.hidden = true;
    emptyBox.hidden = false;
  }

  function showResult(data) {
    const probability = data.probability;
    const risk = data.risk_level;
    document.getElementById("probability").textContent = percent(probability);
    const badge = document.getElementById("risk-level");
    badge.textContent = RISK_WORDS[risk] || risk;
    badge.className = `risk-badge ${risk}`;
    resultBox.dataset.risk = risk;

    const clamped = Math.min(Math.max(probability, 0), 1);
    document.getElementById("gauge-marker").style.left = `${clamped * 100}%`;
    document.getElementById("gauge").setAttribute(
      "aria-label",
      `Probability ${percent(probability)} on a scale from 0 to 100%: ${RISK_WORDS[risk] || risk} ` +
        "(bands: low below 30%, moderate 30 to 60%, high 60% and above)",
    );

    const threshold = modelInfo && typeof modelInfo.threshold === "number" ? modelInfo.threshold : null;
    const verdict = data.prediction === 1 ? "heart disease" : "no heart disease";
    document.getElementById("prediction-line").replaceChildren(
      document.createTextNode(
        threshold === null ? "Model decision: " : `Model decision at its ${percent(threshold)} threshold: `,
      ),
      element("strong", { text: verdict }),
    );

    showContributions(data.contributions);
    showModel(data.model_name, data.model_version);
    if (modelInfo && modelInfo.version !== data.model_version) loadModelInfo();
    const algorithm = modelInfo && modelInfo.version === data.model_version
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

  function showContributions(contributions) {
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
              text: `${valueText(item.feature, item.value)} · ${referenceText(item.feature, item.reference_value)}`,
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

  buildForm();
  fillExample();
  form.addEventListener("submit", submit);
  form.addEventListener("input", markStale);
  form.addEventListener("change", markStale);
  document.getElementById("reset-example").addEventListener("click", () => {
    fillExample();
    markStale();
  });
  loadModelInfo();
})();
