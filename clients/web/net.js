// What both pages need from the server: the token, JSON requests, ICE gathering. Plain JavaScript,
// no build step; loaded before app.js and overlay.js (window.posetalkNet).
"use strict";

window.posetalkNet = (() => {
  const token = new URLSearchParams(location.search).get("token");

  function withToken(path) {
    if (!token) return path;
    return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (token) headers["Authorization"] = "Bearer " + token;
    const resp = await fetch(path, Object.assign({}, options, { headers }));
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      const err = new Error((body && body.error) || resp.status + " " + resp.statusText);
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  function iceComplete(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); } };
      const t = setTimeout(resolve, ms);
      pc.addEventListener("icegatheringstatechange", done);
    });
  }

  // The control WebSocket of a session (the server closes it when the session ends).
  function control(session) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const base = location.pathname.replace(/[^/]*$/, "");
    return new WebSocket(scheme + location.host + base + withToken("ws?session=" + encodeURIComponent(session)));
  }

  return { withToken, api, iceComplete, control };
})();
