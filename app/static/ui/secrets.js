// Secrets: list, create, update, remove. Values are written, never read: the API has no way to.
"use strict";

(() => {
  const {el, clear, json, showMessage, withNamespace, namespace} = UI;
  const $ = (id) => document.getElementById(id);
  const body = document.querySelector("#secrets tbody");

  function done(text) {
    showMessage($("error"), "");
    $("status").textContent = text;
  }

  async function change(method, payload, text) {
    try {
      await json(method, "/system/secrets", {...payload, namespace});
      done(text);
      await refresh();
      return true;
    } catch (error) {
      showMessage($("error"), error.message);
      return false;
    }
  }

  function row(name) {
    const value = el("input", {type: "password", autocomplete: "new-password", "aria-label": `New value of ${name}`});
    const update = el("button", {type: "button", "aria-label": `Update ${name}`}, "Update");
    const remove = el("button", {type: "button", class: "danger", "aria-label": `Remove ${name}`}, "Remove");
    update.addEventListener("click", () => {
      if (!value.value) {
        showMessage($("error"), `Type the new value of ${name} first.`);
        value.focus();
        return;
      }
      change("PUT", {name, value: value.value}, `Secret ${name} updated; its functions are rolled onto the new value.`);
    });
    remove.addEventListener("click", () => {
      if (window.confirm(`Remove the secret ${name}?`)) change("DELETE", {name}, `Secret ${name} removed.`);
    });
    return el("tr", {"data-name": name}, el("th", {scope: "row"}, name), el("td", {}, value), el("td", {class: "actions"}, update, " ", remove));
  }

  async function refresh() {
    const secrets = await json("GET", withNamespace("/system/secrets"));
    const names = secrets.map((secret) => secret.name).sort();
    clear(body).append(...names.map(row));
    $("empty").hidden = names.length > 0;
  }

  UI.onSubmit($("create-form"), async (event) => {
    event.preventDefault();
    const name = $("secret-name").value.trim();
    if (await change("POST", {name, value: $("secret-value").value}, `Secret ${name} created.`)) $("create-form").reset();
  });
  refresh().catch((error) => showMessage($("error"), error.message));
})();
