"""The viewer page's CSS and JavaScript, kept apart from the Python that fills it in.

The page renders one item at a time from a JSON blob, so a report of thousands of
images stays light: only the current item's images are ever requested. All text from
file names goes through ``textContent``, never ``innerHTML``.
"""

CSS = """
:root { color-scheme: light dark; font: 14px/1.4 system-ui, sans-serif; }
[hidden] { display: none !important; }
body { margin: 0; padding: 0 12px 24px; }
header { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 8px 14px;
  align-items: center; padding: 8px 0; background: Canvas; border-bottom: 1px solid #8884; }
header h1 { font-size: 16px; margin: 0 8px 0 0; }
#counter { font-variant-numeric: tabular-nums; font-weight: 600; }
#filename { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
#scores { color: #2a7; font-variant-numeric: tabular-nums; }
.panels { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 10px; }
.panel { flex: 1 1 260px; min-width: 0; margin: 0; }
.panel figcaption, .slider h2 { font-size: 13px; font-weight: 600; margin: 4px 0; }
.frame { border: 1px solid #8884; min-height: 120px; overflow: hidden; }
.frame img { display: block; width: 100%; height: auto; }
.missing { padding: 40px 10px; text-align: center; color: #999; font-style: italic; overflow-wrap: anywhere; }
.slider { margin-top: 16px; }
.ba-scroll { width: min(960px, 100%, 70vh); }
body.zoom .ba-scroll { width: auto; display: inline-block; max-width: 100%; }
.ba { position: relative; line-height: 0; }
.ba img { display: block; width: 100%; height: auto; }
.ba #ba-after { position: absolute; top: 0; left: 0; width: 100%; height: 100%; }
.ba input { position: absolute; left: 0; bottom: 6px; width: 100%; margin: 0; }
.ba-labels { display: flex; justify-content: space-between; font-size: 12px; color: #888; }
body.zoom .frame, body.zoom .ba-scroll { overflow: auto; max-height: 80vh; }
body.zoom .frame img, body.zoom .ba img { max-width: none; image-rendering: pixelated; }
body.zoom .ba { display: inline-block; }
section.curves, section.means { margin-top: 20px; }
svg.curve { max-width: 640px; width: 100%; font: 11px sans-serif; fill: currentColor; }
img.curve { max-width: 100%; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; border-bottom: 1px solid #8883; text-align: right; }
td:first-child, th:first-child { text-align: left; }
"""

JS = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (id) => document.getElementById(id);
  const items = data.items, methods = data.methods;
  let idx = 0, m = 0;

  const sel = $("method");
  methods.forEach((name, i) => {
    const o = document.createElement("option"); o.value = i; o.textContent = name; sel.appendChild(o);
  });
  sel.disabled = methods.length < 2;
  $("panel-original").hidden = !data.hasInputs;
  $("panel-mask").hidden = !data.hasMasks;
  $("panel-reference").hidden = !data.hasReference;
  $("panel-restored").hidden = methods.length === 0;
  const beforeKey = data.hasInputs ? "original" : (data.hasReference ? "reference" : null);
  $("slider").hidden = !beforeKey || methods.length === 0;
  $("ba-before-label").textContent = beforeKey || "";

  function fit(img) {
    const dpr = window.devicePixelRatio || 1;
    img.style.width = document.body.classList.contains("zoom") && img.naturalWidth
      ? (img.naturalWidth / dpr) + "px" : "";
  }
  function decoded(url) { try { return decodeURIComponent(url); } catch (e) { return url; } }
  function show(img, box, src, why, onFail) {
    img.onload = () => fit(img);
    if (!src) { img.hidden = true; img.removeAttribute("src"); box.textContent = why; box.hidden = false; return; }
    const failed = () => {
      img.hidden = true; box.textContent = "image missing: " + decoded(src); box.hidden = false;
      if (onFail) onFail();
    };
    img.onerror = () => { img.dataset.failed = src; failed(); };
    if (img.getAttribute("src") === src && img.dataset.failed === src) { failed(); return; }
    delete img.dataset.failed;
    box.hidden = true; img.hidden = false;
    if (img.getAttribute("src") !== src) img.src = src;
  }
  function panel(id, src, why) {
    const p = $(id);
    show(p.querySelector("img"), p.querySelector(".missing"), src, why);
  }
  function fmt(v, d) { return (v === null || v === undefined) ? "–" : Number(v).toFixed(d); }
  function scoreText(r) {
    const parts = [];
    if (r && data.hasReference) {
      if (r.identical) parts.push("PSNR ∞ (identical)");
      else if (r.psnr !== null && r.psnr !== undefined) parts.push("PSNR " + fmt(r.psnr, 2) + " dB");
      if (r.ssim !== null && r.ssim !== undefined) parts.push("SSIM " + fmt(r.ssim, 4));
      if (!parts.length) parts.push("not scored");
    }
    const k = items[idx].maskScores;
    if (k) parts.push("mask IoU " + fmt(k.iou, 3) + " · F1 " + fmt(k.f1, 3));
    return parts.join(" · ");
  }
  function render() {
    const n = items.length;
    $("counter").textContent = n ? (idx + 1) + " / " + n : "0 / 0";
    $("prev").disabled = idx <= 0; $("next").disabled = idx >= n - 1;
    if (!n) { $("filename").textContent = "no images"; return; }
    const it = items[idx];
    const r = methods.length ? it.results[m] : null;
    $("filename").textContent = r && r.file ? r.file : it.name;
    $("scores").textContent = scoreText(r);
    panel("panel-original", it.original, "no original named " + it.name + ".*");
    panel("panel-restored", r && r.src, methods.length ? "not in " + methods[m] : "no result folders");
    panel("panel-mask", it.mask, "no mask named " + it.name + ".*");
    panel("panel-reference", it.reference, "no reference named " + it.name + ".*");
    const before = beforeKey ? it[beforeKey] : null, after = r && r.src;
    const ok = before && after;
    $("ba").hidden = !ok; $("ba-missing").hidden = !!ok;
    $("ba-missing").textContent = ok ? "" : "slider needs both images";
    if (ok) {
      const broken = () => { $("ba").hidden = true; };
      show($("ba-before"), $("ba-missing"), before, "missing", broken);
      show($("ba-after"), $("ba-missing"), after, "missing", broken);
    }
    try { history.replaceState(null, "", "#" + (idx + 1) + (methods.length ? "&m=" + m : "")); } catch (e) {}
  }
  function go(d) { const j = Math.min(items.length - 1, Math.max(0, idx + d)); if (j !== idx) { idx = j; render(); } }
  function setClip() { $("ba-after").style.clipPath = "inset(0 0 0 " + $("ba-range").value + "%)"; }

  $("prev").addEventListener("click", () => go(-1));
  $("next").addEventListener("click", () => go(1));
  sel.addEventListener("change", () => { m = Number(sel.value); render(); });
  $("ba-range").addEventListener("input", setClip);
  $("zoom").addEventListener("change", (e) => {
    document.body.classList.toggle("zoom", e.target.checked);
    document.querySelectorAll(".frame img, .ba img").forEach(fit);
  });
  document.addEventListener("keydown", (e) => {
    const t = e.target, tag = t && t.tagName;
    if (tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && t.type !== "checkbox")) return;
    if (e.key === "ArrowLeft") { go(-1); e.preventDefault(); }
    else if (e.key === "ArrowRight") { go(1); e.preventDefault(); }
  });
  const h = /^#(\d+)(?:&m=(\d+))?$/.exec(location.hash);
  if (h) {
    idx = Math.min(Math.max(0, Number(h[1]) - 1), Math.max(0, items.length - 1));
    if (h[2] !== undefined && Number(h[2]) < methods.length) { m = Number(h[2]); sel.value = String(m); }
  }
  setClip(); render();
})();
"""

BODY = """
<header>
  <h1>{title}</h1>
  <label>method <select id="method" aria-label="method"></select></label>
  <button id="prev" type="button" title="previous (←)">◀ Previous</button>
  <span id="counter">0 / 0</span>
  <button id="next" type="button" title="next (→)">Next ▶</button>
  <span id="filename"></span>
  <span id="scores"></span>
  <label><input type="checkbox" id="zoom"> 1:1 pixels</label>
</header>
<div class="panels">
  <figure class="panel" id="panel-original"><figcaption>original (degraded)</figcaption>
    <div class="frame"><img alt="original" loading="lazy" hidden><div class="missing" hidden></div></div></figure>
  <figure class="panel" id="panel-restored"><figcaption>restored</figcaption>
    <div class="frame"><img alt="restored" loading="lazy" hidden><div class="missing" hidden></div></div></figure>
  <figure class="panel" id="panel-mask"><figcaption>mask</figcaption>
    <div class="frame"><img alt="mask" loading="lazy" hidden><div class="missing" hidden></div></div></figure>
  <figure class="panel" id="panel-reference"><figcaption>clean reference</figcaption>
    <div class="frame"><img alt="reference" loading="lazy" hidden><div class="missing" hidden></div></div></figure>
</div>
<section class="slider" id="slider">
  <h2>before / after</h2>
  <div class="ba-scroll">
    <div class="ba-labels"><span id="ba-before-label"></span><span>restored</span></div>
    <div class="ba" id="ba"><img id="ba-before" alt="before"><img id="ba-after" alt="after">
      <input type="range" id="ba-range" min="0" max="100" value="50" aria-label="before/after split"></div>
    <div class="missing" id="ba-missing" hidden></div>
  </div>
</section>
{means}
{curves}
"""
