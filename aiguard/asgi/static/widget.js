/*
 * aiguard widget: AI badge, consent dialog, inaccuracy reports.
 *
 * Include once, anywhere on a chat page:
 *   <script src="/aiguard/widget.js" defer></script>
 * Optional attributes on that script tag:
 *   data-prefix="/aiguard"   where the aiguard API lives (default: the folder of this script)
 *   data-lang="de"           force a locale (default: the server negotiates Accept-Language)
 *   data-consent="manual"    do not open the consent dialog on load; the page calls
 *                            aiguard.ensureConsent() before sending instead
 *
 * Public API (window.aiguard):
 *   ready                    Promise, resolves once strings and consent status are loaded
 *   ensureConsent()          Promise<boolean>: true when every required purpose is granted,
 *                            opening the dialog first when needed
 *   handleResponse(resp)     Promise<boolean>: for a 428 consent_required problem from the chat
 *                            endpoint, reopens the dialog and resolves true once consent is given
 *   attachReport(el, id)     adds a "Report inaccurate answer" control to an answer element
 *   withdrawConsent()        Promise<boolean>
 *   openConsent()            Promise<boolean>: show the dialog regardless of status
 *   t(key, vars)             a UI string of the current locale
 *
 * No dependencies, no build step. Every text (server strings, notices, the user's own input)
 * is put in the page with textContent, never as HTML.
 */
(function () {
  "use strict";

  if (window.aiguard && window.aiguard.__loaded) {
    return; // included twice: keep the first instance
  }

  var script = document.currentScript;
  var attr = function (name) {
    return script ? script.getAttribute(name) : null;
  };
  var prefix = attr("data-prefix");
  if (!prefix && script && script.src) {
    prefix = new URL(script.src, location.href).pathname.replace(/\/widget\.js$/, "");
  }
  prefix = (prefix || "/aiguard").replace(/\/+$/, "");
  var forcedLang = attr("data-lang");
  var autoConsent = attr("data-consent") !== "manual";

  // until /i18n answers: the badge must show from the first paint, "AI" reads in most locales
  var strings = { badge: "AI", badge_label: "AI" };
  var locale = "en";
  var consentState = null; // last GET /consent body
  var dialog = null; // the open consent dialog, if any
  var pendingConsent = []; // resolvers waiting for the dialog's outcome
  var badgeEls = null;
  var idCounter = 0;

  // ---------- helpers ----------

  function t(key, vars) {
    var s = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    if (vars) {
      s = s.replace(/\{(\w+)\}/g, function (m, name) {
        return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : m;
      });
    }
    return s;
  }

  function uid(stem) {
    idCounter += 1;
    return "ag-" + stem + "-" + idCounter;
  }

  // Builds an element; text goes through textContent so nothing is ever parsed as HTML.
  function el(tag, props, children) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") node.textContent = v;
        else if (k === "textKey") {
          // re-applied by relabel() once /i18n has answered
          node.setAttribute("data-ag-text", v);
          node.textContent = t(v);
        } else if (k === "labelKey") {
          node.setAttribute("data-ag-label", v);
          node.setAttribute("aria-label", t(v));
        }
        else if (k === "className") node.className = v;
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : v);
      });
    }
    (children || []).forEach(function (c) {
      if (c) node.appendChild(c);
    });
    return node;
  }

  function api(method, path, body) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(prefix + path, init).then(function (resp) {
      return resp.text().then(function (raw) {
        var data = null;
        try {
          data = raw ? JSON.parse(raw) : null;
        } catch (e) {
          data = null;
        }
        return { ok: resp.ok, status: resp.status, data: data };
      });
    });
  }

  function errorText(result) {
    if (!result || !result.status) return t("error_network");
    if (result.status === 429) return t("error_rate_limited");
    if (result.status === 404) return t("error_not_found");
    if (result.status === 400 || result.status === 422) return t("error_invalid");
    return t("error_generic", { status: result.status });
  }

  var toastTimer = null;
  function toast(message) {
    var box = document.querySelector(".ag-toast");
    if (!box) {
      box = el("div", { className: "ag-root ag-toast", role: "status", "aria-live": "polite" });
      document.body.appendChild(box);
    }
    box.textContent = message;
    box.classList.add("ag-toast-show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () {
      box.classList.remove("ag-toast-show");
    }, 6000);
  }

  function ensureStylesheet() {
    var href = prefix + "/widget.css";
    var links = document.querySelectorAll('link[rel="stylesheet"]');
    for (var i = 0; i < links.length; i++) {
      if (links[i].getAttribute("href") === href) return;
    }
    document.head.appendChild(el("link", { rel: "stylesheet", href: href }));
  }

  // ---------- consent ----------

  function missingPurposes(state) {
    if (!state) return [];
    var purposes = state.purposes || {};
    return (state.required || []).filter(function (p) {
      return !purposes[p] || purposes[p].status !== "granted";
    });
  }

  function anyGranted(state) {
    var purposes = (state && state.purposes) || {};
    return Object.keys(purposes).some(function (p) {
      return purposes[p] && purposes[p].status === "granted";
    });
  }

  function loadConsent() {
    return api("GET", "/consent").then(function (r) {
      if (r.ok && r.data) consentState = r.data;
      renderPanel();
      return consentState;
    });
  }

  function settleConsent(value) {
    var waiting = pendingConsent;
    pendingConsent = [];
    waiting.forEach(function (resolve) {
      resolve(value);
    });
  }

  function closeDialog(value) {
    if (!dialog) return;
    var d = dialog;
    dialog = null;
    document.removeEventListener("focusin", d.keepFocus, true);
    d.overlay.remove();
    document.documentElement.classList.remove("ag-modal-open");
    if (d.returnFocus && document.contains(d.returnFocus)) d.returnFocus.focus();
    settleConsent(value);
  }

  function focusables(root) {
    return Array.prototype.slice
      .call(root.querySelectorAll("button, [href], input, select, textarea, [tabindex]"))
      .filter(function (n) {
        return !n.disabled && n.getAttribute("tabindex") !== "-1" && n.offsetParent !== null;
      });
  }

  // The notice may come from GET /consent (notice.text) or from a 428 problem (notice.text).
  function showDialog(notice, purposes) {
    return new Promise(function (resolve) {
      pendingConsent.push(resolve);
      if (dialog) return; // already open: share its outcome
      var titleId = uid("consent-title");
      var textId = uid("consent-text");
      var status = el("p", { className: "ag-form-status", role: "alert" });
      var accept = el("button", {
        type: "button",
        className: "ag-btn ag-btn-primary",
        text: t("consent_accept"),
      });
      var decline = el("button", {
        type: "button",
        className: "ag-btn",
        text: t("consent_decline"),
      });
      var box = el(
        "div",
        {
          className: "ag-dialog",
          role: "dialog",
          "aria-modal": "true",
          "aria-labelledby": titleId,
          "aria-describedby": textId,
          tabindex: "-1",
        },
        [
          el("h2", { className: "ag-dialog-title", id: titleId, text: t("consent_title") }),
          el("div", {
            className: "ag-notice",
            id: textId,
            text: (notice && notice.text) || "",
          }),
          status,
          el("div", { className: "ag-actions" }, [decline, accept]),
        ]
      );
      var overlay = el("div", { className: "ag-root ag-overlay" }, [box]);

      function choose(action) {
        accept.disabled = decline.disabled = true;
        status.textContent = "";
        api("POST", "/consent", {
          action: action,
          purposes: purposes,
          notice_version: notice && notice.version ? String(notice.version) : "1",
        }).then(
          function (r) {
            if (!r.ok) {
              accept.disabled = decline.disabled = false;
              status.textContent = errorText(r);
              return;
            }
            return loadConsent().then(function () {
              var granted = action === "granted" && missingPurposes(consentState).length === 0;
              toast(t(action === "granted" ? "consent_recorded" : "consent_declined"));
              closeDialog(granted);
            });
          },
          function () {
            accept.disabled = decline.disabled = false;
            status.textContent = t("error_network");
          }
        );
      }
      accept.addEventListener("click", function () {
        choose("granted");
      });
      decline.addEventListener("click", function () {
        choose("refused");
      });

      box.addEventListener("keydown", function (ev) {
        if (ev.key === "Escape") {
          ev.preventDefault();
          closeDialog(false); // dismissing records nothing: the next message asks again
        } else if (ev.key === "Tab") {
          var items = focusables(box);
          if (!items.length) return;
          var first = items[0];
          var last = items[items.length - 1];
          if (ev.shiftKey && document.activeElement === first) {
            ev.preventDefault();
            last.focus();
          } else if (!ev.shiftKey && document.activeElement === last) {
            ev.preventDefault();
            first.focus();
          }
        }
      });

      // focus that escapes the dialog (mouse, assistive tech) is brought back
      var keepFocus = function (ev) {
        if (dialog && !box.contains(ev.target)) accept.focus();
      };
      dialog = {
        overlay: overlay,
        keepFocus: keepFocus,
        returnFocus: document.activeElement,
      };
      document.body.appendChild(overlay);
      document.documentElement.classList.add("ag-modal-open");
      document.addEventListener("focusin", keepFocus, true);
      accept.focus();
    });
  }

  function ensureConsent() {
    return ready.then(function () {
      return loadConsent();
    }).then(function (state) {
      if (!state) return true; // no consent API answer: let the chat endpoint decide
      var missing = missingPurposes(state);
      if (!missing.length) return true;
      return showDialog(state.notice, state.required || missing);
    });
  }

  function openConsent() {
    return ready.then(function () {
      return loadConsent();
    }).then(function (state) {
      var required = (state && state.required) || [];
      return showDialog(state && state.notice, required);
    });
  }

  // For a chat response: a 428 consent_required problem reopens the dialog.
  function handleResponse(resp) {
    if (!resp || resp.status !== 428) return Promise.resolve(false);
    return resp
      .clone()
      .json()
      .catch(function () {
        return {};
      })
      .then(function (problem) {
        var code = String((problem && problem.type) || "").split(/[/:]/).pop();
        if (code && code !== "consent_required") return false;
        var purposes =
          (problem && problem.purposes) || (consentState && consentState.required) || [];
        return ready.then(function () {
          return showDialog(problem && problem.notice, purposes);
        });
      });
  }

  function withdrawConsent() {
    return api("POST", "/consent/withdraw", {}).then(
      function (r) {
        if (!r.ok) {
          toast(errorText(r));
          return false;
        }
        toast(t("consent_withdrawn"));
        return loadConsent().then(function () {
          return true;
        });
      },
      function () {
        toast(t("error_network"));
        return false;
      }
    );
  }

  // ---------- badge ----------

  function buildBadge() {
    var panelId = uid("panel");
    var button = el("button", {
      type: "button",
      className: "ag-badge-btn",
      "aria-expanded": "false",
      "aria-controls": panelId,
      labelKey: "badge_label",
      textKey: "badge",
    });
    var status = el("p", { className: "ag-panel-status" });
    var withdraw = el("button", {
      type: "button",
      className: "ag-btn ag-withdraw",
      textKey: "consent_withdraw",
      onclick: function () {
        withdrawConsent();
      },
    });
    var review = el("button", {
      type: "button",
      className: "ag-btn ag-review",
      textKey: "consent_review",
      onclick: function () {
        setOpen(false);
        openConsent();
      },
    });
    var close = el("button", {
      type: "button",
      className: "ag-close",
      labelKey: "close",
      text: "\u00d7",
      onclick: function () {
        setOpen(false);
        button.focus();
      },
    });
    var panelTitleId = uid("panel-title");
    var panel = el(
      "div",
      { className: "ag-panel", id: panelId, role: "region", "aria-labelledby": panelTitleId, hidden: true },
      [
        close,
        el("h2", { className: "ag-panel-title", id: panelTitleId, textKey: "panel_title" }),
        el("p", { className: "ag-panel-text", textKey: "panel_text" }),
        status,
        el("div", { className: "ag-actions" }, [review, withdraw]),
      ]
    );
    function setOpen(open) {
      panel.hidden = !open;
      button.setAttribute("aria-expanded", open ? "true" : "false");
    }
    button.addEventListener("click", function () {
      setOpen(panel.hidden);
    });
    var root = el("div", { className: "ag-root ag-badge", "data-aiguard": "badge" }, [button, panel]);
    root.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape" && !panel.hidden) {
        setOpen(false);
        button.focus();
      }
    });
    document.body.appendChild(root);
    badgeEls = { root: root, button: button, status: status, withdraw: withdraw, review: review };
  }

  function renderPanel() {
    if (!badgeEls) return;
    var granted = anyGranted(consentState);
    var missing = missingPurposes(consentState).length > 0;
    badgeEls.status.textContent = t(
      missing || !granted ? "consent_status_missing" : "consent_status_granted"
    );
    badgeEls.withdraw.hidden = !granted;
    badgeEls.review.hidden = !consentState || !(consentState.required || []).length;
  }

  function relabel() {
    var nodes = document.querySelectorAll("[data-ag-text]");
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = t(nodes[i].getAttribute("data-ag-text"));
    nodes = document.querySelectorAll("[data-ag-label]");
    for (i = 0; i < nodes.length; i++) nodes[i].setAttribute("aria-label", t(nodes[i].getAttribute("data-ag-label")));
    renderPanel();
  }

  // ---------- reports ----------

  var CATEGORIES = ["inaccurate", "outdated", "harmful", "infringing", "privacy", "other"];

  function attachReport(target, messageId) {
    if (!target || !messageId) return null;
    var existing = target.querySelector(":scope > .ag-report");
    if (existing) return existing;
    var wrap = el("div", { className: "ag-root ag-report", "data-message-id": messageId });
    var formId = uid("report");
    var toggle = el("button", {
      type: "button",
      className: "ag-link ag-report-toggle",
      "aria-expanded": "false",
      "aria-controls": formId,
      textKey: "report_open",
    });
    wrap.appendChild(toggle);
    target.appendChild(wrap);
    // the form is built on first open so the strings are the loaded ones
    var form = null;
    toggle.addEventListener("click", function () {
      if (!form) {
        form = buildReportForm(formId, messageId, wrap, toggle);
        wrap.appendChild(form);
      }
      var open = form.hidden;
      form.hidden = !open;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) form.querySelector("select").focus();
    });
    return wrap;
  }

  function field(labelText, control) {
    var id = uid("field");
    control.id = id;
    return el("div", { className: "ag-field" }, [
      el("label", { for: id, text: labelText }),
      control,
    ]);
  }

  function buildReportForm(formId, messageId, wrap, toggle) {
    var select = el(
      "select",
      { name: "category", required: true },
      CATEGORIES.map(function (c) {
        return el("option", { value: c, text: t("category_" + c) });
      })
    );
    var comment = el("textarea", {
      name: "comment",
      rows: "3",
      maxlength: "2000",
      placeholder: t("report_comment_hint"),
    });
    var correction = el("textarea", {
      name: "correction",
      rows: "2",
      maxlength: "4000",
      placeholder: t("report_correction_hint"),
    });
    var status = el("p", { className: "ag-form-status", role: "alert" });
    var submit = el("button", {
      type: "submit",
      className: "ag-btn ag-btn-primary",
      text: t("report_submit"),
    });
    var cancel = el("button", { type: "button", className: "ag-btn", text: t("report_cancel") });
    var titleId = uid("report-title");
    var form = el(
      "form",
      { className: "ag-report-form", id: formId, "aria-labelledby": titleId, hidden: true, novalidate: true },
      [
        el("h3", { className: "ag-report-title", id: titleId, text: t("report_title") }),
        field(t("report_category"), select),
        field(t("report_comment"), comment),
        field(t("report_correction"), correction),
        status,
        el("div", { className: "ag-actions" }, [cancel, submit]),
      ]
    );
    cancel.addEventListener("click", function () {
      form.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      toggle.focus();
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      submit.disabled = true;
      submit.textContent = t("report_sending");
      status.textContent = "";
      var body = { message_id: messageId, category: select.value };
      if (comment.value.trim()) body.comment = comment.value;
      if (correction.value.trim()) body.correction = correction.value;
      api("POST", "/reports", body)
        .then(function (r) {
          if (!r.ok || !r.data) {
            status.textContent = errorText(r);
            return;
          }
          showReceipt(wrap, r.data, body);
        }, function () {
          status.textContent = t("error_network");
        })
        .then(function () {
          submit.disabled = false;
          submit.textContent = t("report_submit");
        });
    });
    return form;
  }

  // POST /reports answers {report: {id, ...}, procedure: {id, version, ..., text}, status_url}.
  function procedureText(data) {
    var p = data.procedure;
    if (p && typeof p === "object") p = p.text;
    return typeof p === "string" && p ? p : t("report_procedure");
  }

  function showReceipt(wrap, data, sent) {
    var reportId = String((data.report && data.report.id) || data.id || "");
    var receipt = el("div", { className: "ag-receipt", role: "status", tabindex: "-1" }, [
      el("p", { className: "ag-receipt-title", text: t("report_received", { id: reportId }) }),
      el("p", { className: "ag-receipt-procedure", text: procedureText(data) }),
    ]);
    if (sent.comment) {
      receipt.appendChild(el("blockquote", { className: "ag-receipt-comment", text: sent.comment }));
    }
    while (wrap.firstChild) wrap.removeChild(wrap.firstChild);
    wrap.appendChild(receipt);
    wrap.setAttribute("data-report-id", reportId);
    receipt.focus();
  }

  // ---------- start ----------

  function loadStrings() {
    var q = forcedLang ? "?lang=" + encodeURIComponent(forcedLang) : "";
    return api("GET", "/i18n" + q).then(
      function (r) {
        if (r.ok && r.data && r.data.strings) {
          strings = r.data.strings;
          locale = r.data.locale || locale;
        }
      },
      function () {}
    );
  }

  function start() {
    ensureStylesheet();
    buildBadge(); // shown at once with the built-in "AI"; relabelled when strings arrive
    return loadStrings()
      .then(function () {
        relabel();
        return loadConsent().catch(function () {
          return null;
        });
      })
      .then(function (state) {
        if (autoConsent && state && missingPurposes(state).length) {
          showDialog(state.notice, state.required);
        }
      });
  }

  var ready = new Promise(function (resolve) {
    var go = function () {
      start().then(resolve, resolve);
    };
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", go);
    } else {
      go();
    }
  });

  window.aiguard = {
    __loaded: true,
    ready: ready,
    ensureConsent: ensureConsent,
    handleResponse: handleResponse,
    attachReport: attachReport,
    withdrawConsent: withdrawConsent,
    openConsent: openConsent,
    t: t,
    get locale() {
      return locale;
    },
    get prefix() {
      return prefix;
    },
    get strings() {
      return Object.assign({}, strings);
    },
  };
})();
