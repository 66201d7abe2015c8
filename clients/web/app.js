// posetalk's browser client: pick or upload a portrait, talk into the microphone, watch the
// avatar say it back. Plain JavaScript, no build step. The server is the page's own origin.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const { withToken, api, iceComplete, control } = window.posetalkNet;
  const state = { pc: null, ws: null, mic: null, session: null, avatar: "default", serverStats: null,
                  error: "", timer: null, last: null, fps: 0, jitterMs: null };

  function showError(message) {
    state.error = message || "";
    $("error").textContent = state.error;
  }

  function setStatus(text) { $("status").textContent = text; }

  // -- portraits ------------------------------------------------------------------------------

  async function loadAvatars(choose) {
    const { avatars } = await api("avatars");
    const box = $("avatars");
    box.textContent = "";
    for (const id of avatars) {
      const img = document.createElement("img");
      img.src = withToken("avatars/" + encodeURIComponent(id) + ".png");
      img.alt = id;
      img.title = id;
      img.addEventListener("click", () => chooseAvatar(id));
      box.appendChild(img);
    }
    chooseAvatar(choose || state.avatar);
  }

  function chooseAvatar(id) {
    state.avatar = id;
    for (const img of $("avatars").querySelectorAll("img")) img.classList.toggle("chosen", img.alt === id);
    if (state.pc) $("upload-status").textContent = "the new portrait is used from the next start";
  }

  async function upload(file) {
    $("upload-status").textContent = "preparing " + file.name + "…";
    try {
      const body = await api("avatars", { method: "POST", body: file,
                                          headers: { "Content-Type": file.type || "application/octet-stream" } });
      await loadAvatars(body.id);
      $("upload-status").textContent = "ready";
    } catch (e) {
      $("upload-status").textContent = "";
      showError("upload refused: " + e.message);
    }
  }

  // -- the call -------------------------------------------------------------------------------

  async function start() {
    if (state.pc) return;
    showError("");
    setStatus("starting…");
    try {
      state.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 }, video: false });
    } catch (e) {
      state.mic = null;
      showError("no microphone (" + e.message + "): the avatar will only listen");
    }
    const pc = new RTCPeerConnection();
    state.pc = pc;
    const remote = new MediaStream();
    const video = $("avatar");
    video.srcObject = remote;
    video.muted = !$("sound").checked;
    pc.addEventListener("track", (ev) => { remote.addTrack(ev.track); video.play().catch(() => {}); });
    pc.addEventListener("connectionstatechange", () => {
      $("s-state").textContent = pc.connectionState;
      if (pc.connectionState === "failed") { showError("the connection failed"); stop(); }
    });
    pc.addTransceiver("video", { direction: "recvonly" });
    if (state.mic) for (const track of state.mic.getAudioTracks()) pc.addTrack(track, state.mic);
    else pc.addTransceiver("audio", { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await iceComplete(pc, 3000);
    try {
      const answer = await api("offer", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", avatar: state.avatar,
                               prompt: $("prompt").value }),
      });
      state.session = answer.session;
      await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    } catch (e) {
      showError("the server refused: " + e.message);
      await stop();
      return;
    }
    openControl();
    state.timer = setInterval(updateStats, 1000);
    $("start").disabled = true;
    $("stop").disabled = false;
    $("interrupt").disabled = false;
    setStatus("connected: talk to the avatar");
  }

  function openControl() {
    const ws = control(state.session);
    ws.addEventListener("message", (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "stats") state.serverStats = msg;
      else if (msg.type === "error") showError(msg.error);
    });
    state.ws = ws;
  }

  function send(msg) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
  }

  async function stop() {
    clearInterval(state.timer);
    state.timer = null;
    if (state.ws) state.ws.close();
    if (state.pc) state.pc.close();
    if (state.mic) for (const t of state.mic.getTracks()) t.stop();
    if (state.session) api("sessions/" + encodeURIComponent(state.session), { method: "DELETE" }).catch(() => {});
    Object.assign(state, { pc: null, ws: null, mic: null, session: null, last: null });
    $("start").disabled = false;
    $("stop").disabled = true;
    $("interrupt").disabled = true;
    setStatus("idle");
  }

  // -- stats ----------------------------------------------------------------------------------

  async function videoInbound() {
    if (!state.pc) return null;
    const report = await state.pc.getStats();
    let found = null;
    report.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") found = s; });
    return found;
  }

  async function updateStats() {
    const v = await videoInbound();
    if (v) {
      const now = performance.now();
      if (state.last) state.fps = (v.framesDecoded - state.last.frames) / ((now - state.last.t) / 1000);
      state.last = { frames: v.framesDecoded, t: now };
      if (v.jitterBufferEmittedCount) state.jitterMs = 1000 * v.jitterBufferDelay / v.jitterBufferEmittedCount;
      $("s-fps").textContent = state.fps.toFixed(1);
      $("s-frames").textContent = v.framesDecoded;
      $("s-jitter").textContent = state.jitterMs === null ? "–" : state.jitterMs.toFixed(0) + " ms";
    }
    const s = state.serverStats;
    if (s) {
      $("s-send-fps").textContent = s.send_fps.toFixed(1);
      $("s-latency").textContent = s.latency_ms.toFixed(0) + " ms";
      $("s-repeated").textContent = s.video_repeated + " / " + s.video_skipped;
    }
  }

  // What the page shows, for scripts and tests.
  async function snapshot() {
    const v = await videoInbound();
    const video = $("avatar");
    return {
      connection: state.pc ? state.pc.connectionState : "none",
      session: state.session,
      framesDecoded: v ? v.framesDecoded : 0,
      videoWidth: video.videoWidth, videoHeight: video.videoHeight, currentTime: video.currentTime,
      fps: state.fps, server: state.serverStats, error: state.error,
      shown: { fps: $("s-fps").textContent, latency: $("s-latency").textContent },
    };
  }

  // -- wiring ---------------------------------------------------------------------------------

  $("start").addEventListener("click", () => start().catch((e) => { showError(e.message); stop(); }));
  $("stop").addEventListener("click", () => stop());
  $("interrupt").addEventListener("click", () => send({ type: "interrupt" }));
  $("sound").addEventListener("change", () => { $("avatar").muted = !$("sound").checked; });
  $("prompt-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    send({ type: "prompt", text: $("prompt").value });
  });
  $("upload").addEventListener("change", (ev) => { if (ev.target.files[0]) upload(ev.target.files[0]); });
  window.addEventListener("pagehide", () => {
    if (state.session) navigator.sendBeacon(withToken("sessions/" + encodeURIComponent(state.session) + "/close"));
  });
  loadAvatars().catch((e) => showError("cannot reach the server: " + e.message));
  window.posetalk = { start, stop, snapshot, send };
})();
