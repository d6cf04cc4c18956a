// Live reload for the newsletter preview: on each server-sent event, fetch this page again and swap
// in the parts marked data-live, keeping the scroll position of the page and of the email frame.
"use strict";
(function () {
  const body = document.body;
  const slug = body.dataset.slug || "";
  const status = document.getElementById("live-status");
  const frame = document.getElementById("email-frame");
  const box = document.getElementById("frame-box");
  let frameScroll = 0;
  let busy = false;
  let again = false;
  body.dataset.refreshes = "0";

  function liveIds(doc) {
    return Array.from(doc.querySelectorAll("[data-live]")).map((el) => el.id).join(" ");
  }

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const y = window.scrollY;
      if (frame && frame.contentWindow && showing()) frameScroll = frame.contentWindow.scrollY;
      const response = await fetch(location.pathname + location.search, { cache: "no-store" });
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      if (liveIds(doc) !== liveIds(document)) { location.reload(); return; }
      document.querySelectorAll("[data-live]").forEach((el) => {
        const fresh = doc.getElementById(el.id);
        if (fresh && fresh.innerHTML !== el.innerHTML) el.innerHTML = fresh.innerHTML;
      });
      body.classList.toggle("has-error", doc.body.classList.contains("has-error"));
      document.title = doc.title;
      const freshFrame = doc.getElementById("email-frame");
      const srcdoc = freshFrame ? freshFrame.getAttribute("srcdoc") || "" : "";
      if (frame && srcdoc && srcdoc !== frame.getAttribute("srcdoc")) frame.setAttribute("srcdoc", srcdoc);
      window.scrollTo(0, y);
      body.dataset.refreshes = String(Number(body.dataset.refreshes) + 1);
    } catch (err) {
      if (status) status.textContent = "refresh failed: " + err;
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  // The email frame: keep its scroll across re-renders; links open in a new tab, not in the frame.
  function showing() { return !body.classList.contains("has-error"); }
  function hookFrame() {
    const win = frame.contentWindow;
    if (!win || !frame.getAttribute("srcdoc")) return;
    win.scrollTo(0, frameScroll);
    win.addEventListener("scroll", () => { if (showing()) frameScroll = win.scrollY; });
    win.document.addEventListener("click", (event) => {
      const link = event.target.closest ? event.target.closest("a[href]") : null;
      if (!link) return;
      event.preventDefault();
      window.open(link.href, "_blank", "noopener");
    });
    body.dataset.frameLoads = String(Number(body.dataset.frameLoads || "0") + 1);
  }
  if (frame) {
    frame.addEventListener("load", hookFrame);
    // The frame may have loaded before this deferred script ran.
    const doc = frame.contentDocument;
    if (doc && doc.readyState === "complete" && doc.URL === "about:srcdoc") hookFrame();
  }

  // Width toggles and tabs, remembered across reloads.
  function setWidth(mode) {
    if (!box) return;
    box.classList.toggle("mobile", mode === "mobile");
    box.classList.toggle("desktop", mode !== "mobile");
    document.querySelectorAll("[data-width]").forEach((b) => b.classList.toggle("active", b.dataset.width === mode));
    try { localStorage.setItem("preview-width", mode); } catch (e) { /* private mode */ }
  }
  function setTab(name) {
    document.querySelectorAll(".pane").forEach((pane) => { pane.hidden = pane.id !== "pane-" + name; });
    document.querySelectorAll("[data-tab]").forEach((b) => {
      b.classList.toggle("active", b.dataset.tab === name);
      b.setAttribute("aria-selected", String(b.dataset.tab === name));
    });
    const url = location.pathname + location.search + (name === "email" ? "" : "#" + name);
    history.replaceState(null, "", url);
  }
  document.querySelectorAll("[data-width]").forEach((b) => b.addEventListener("click", () => setWidth(b.dataset.width)));
  document.querySelectorAll("[data-tab]").forEach((b) => b.addEventListener("click", () => setTab(b.dataset.tab)));
  if (box) {
    let saved = "desktop";
    try { saved = localStorage.getItem("preview-width") || "desktop"; } catch (e) { /* private mode */ }
    setWidth(saved);
    const hash = location.hash.slice(1);
    if (["text", "source", "headers"].includes(hash)) setTab(hash);
  }

  // Send test: post the form (the browser adds Origin) and show the answer here.
  const form = document.getElementById("send-test");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const out = document.getElementById("send-result");
      const button = form.querySelector("button");
      out.className = "";
      out.textContent = "sending…";
      button.disabled = true;
      try {
        const response = await fetch(form.action, {
          method: "POST", body: new FormData(form), headers: { Accept: "application/json" },
        });
        const answer = await response.json();
        out.className = answer.ok ? "ok" : "bad";
        out.textContent = answer.message;
      } catch (err) {
        out.className = "bad";
        out.textContent = "could not reach the preview server: " + err;
      } finally {
        button.disabled = false;
      }
    });
  }

  // Server-sent events: a message means "a watched file changed and the new HTML is ready".
  let seen = false;
  const events = new EventSource("/events?slug=" + encodeURIComponent(slug));
  events.addEventListener("hello", () => {
    if (status) { status.textContent = "live"; status.className = "live on"; }
    if (seen) refresh(); // reconnected (server restarted): catch up
    seen = true;
  });
  events.onmessage = () => refresh();
  events.onerror = () => { if (status) { status.textContent = "reconnecting…"; status.className = "live off"; } };
})();
