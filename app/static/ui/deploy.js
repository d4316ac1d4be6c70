// The deploy form, also used to update a function (?update=NAME). A 400 from the API names the
// field at fault ("Invalid limits.memory: ..."): its sentence is shown at that field.
"use strict";

(() => {
  const {el, clear, json, showMessage, withNamespace, namespace, functionPage, parsePairs, pairsText} = UI;
  const form = document.getElementById("deploy-form");
  const update = form.dataset.update;
  const $ = (id) => document.getElementById(id);
  const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);

  function clearErrors() {
    form.querySelectorAll("p.error").forEach((node) => showMessage(node, ""));
    form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
  }

  // The field an API sentence names: "Invalid envVars.X: ..." names envVars; a secret that is
  // missing names the secrets, a name that is taken the name.
  function fieldOf(message, status) {
    const named = /^Invalid ([^:\s]+):/.exec(message);
    const path = named ? named[1].split(".") : [];
    const candidates = path.map((_, index) => path.slice(0, path.length - index).join("."));
    if (status === 409) candidates.push("service");
    if (/^Secret /.test(message)) candidates.push("secrets");
    return candidates.map((field) => form.querySelector(`[data-field="${CSS.escape(field)}"]`)).find(Boolean);
  }

  function showError(message, status) {
    const field = fieldOf(message, status);
    if (!field) {
      showMessage($("form-error"), message);
      $("form-error").focus();
      return;
    }
    const box = field.querySelector("p.error");
    showMessage(box, message);
    const input = field.querySelector("input, textarea");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  function resources(prefix) {
    const memory = $(`${prefix}-memory`).value.trim(), cpu = $(`${prefix}-cpu`).value.trim();
    return memory || cpu ? {memory: memory || undefined, cpu: cpu || undefined} : undefined;
  }

  function deployment() {
    return {
      service: $("name").value.trim(),
      image: $("image").value.trim(),
      namespace,
      envProcess: $("process").value.trim() || undefined,
      envVars: parsePairs($("env").value, "envVars"),
      labels: parsePairs($("labels").value, "labels"),
      annotations: parsePairs($("annotations").value, "annotations"),
      constraints: lines($("constraints").value),
      secrets: [...form.querySelectorAll("input[name=secret]:checked")].map((box) => box.value),
      limits: resources("limits"),
      requests: resources("requests"),
      readOnlyRootFilesystem: $("read-only").checked,
    };
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    let body;
    try {
      body = deployment();
    } catch (error) {
      showError(error.message, 400);
      return;
    }
    try {
      await json(update ? "PUT" : "POST", "/system/functions", body);
    } catch (error) {
      showError(error.message, error.status);
      return;
    }
    $("deploy-result").textContent = update ? "Updated." : "Deployed.";
    location.assign(functionPage(body.service));
  }

  async function load() {
    let chosen = [];
    if (update) {
      const fn = await json("GET", withNamespace(`/system/function/${encodeURIComponent(update)}`));
      $("image").value = fn.image;
      $("process").value = fn.envProcess || "";
      $("env").value = pairsText(fn.envVars);
      // faas_function is the gateway's own label: it is added again on update.
      $("labels").value = pairsText(Object.fromEntries(Object.entries(fn.labels || {}).filter(([key]) => key !== "faas_function")));
      $("annotations").value = pairsText(fn.annotations);
      $("constraints").value = (fn.constraints || []).join("\n");
      for (const kind of ["limits", "requests"]) {
        $(`${kind}-memory`).value = (fn[kind] && fn[kind].memory) || "";
        $(`${kind}-cpu`).value = (fn[kind] && fn[kind].cpu) || "";
      }
      $("read-only").checked = Boolean(fn.readOnlyRootFilesystem);
      chosen = fn.secrets || [];
    }
    const secrets = (await json("GET", withNamespace("/system/secrets"))).map((secret) => secret.name);
    if (secrets.length) {
      clear($("secret-choices")).append(...secrets.map((secret) => el("label", {class: "choice"},
        el("input", {type: "checkbox", name: "secret", value: secret, checked: chosen.includes(secret)}), ` ${secret}`)));
    }
  }

  UI.onSubmit(form, submit);
  load().catch((error) => showMessage($("form-error"), error.message));
})();
