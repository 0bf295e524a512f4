// SAMBOX page: prompts on a canvas, SAM's candidate masks from the server, instances and
// "find the rest" proposals. Every change is saved by the server as it happens.
'use strict';

const S = {
  state: null, index: 0, img: new Image(), prompt: { points: [], box: null },
  history: [], cands: null, sel: 0, cls: null, instances: [], proposals: [],
  selected: null, drag: null, seq: 0, heat: null,
};
const $ = (id) => document.getElementById(id);
const PALETTE = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
  [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]];
const color = (cid) => PALETTE[(cid - 1) % PALETTE.length];

async function api(method, url, body) {
  const opts = { method, headers: { 'Content-Type': 'application/json' } };
  if (body !== undefined) opts.body = JSON.stringify(body);
  const r = await fetch(url, opts);
  const data = await r.json();
  if (!r.ok) { showError(data.detail || r.statusText); throw new Error(data.detail); }
  return data;
}

function showError(msg) {
  const e = $('error');
  e.textContent = msg; e.hidden = false;
  clearTimeout(showError.t); showError.t = setTimeout(() => { e.hidden = true; }, 5000);
}

const image = () => S.state.images[S.index];

// ---------------------------------------------------------------- drawing
function paintRuns(data, runs, h, w, rgb, alpha) {
  let k = 0, on = false;
  for (const n of runs) {
    if (on) {
      for (let i = k; i < k + n; i++) {
        const p = ((i % h) * w + Math.floor(i / h)) * 4;
        data[p] = rgb[0]; data[p + 1] = rgb[1]; data[p + 2] = rgb[2]; data[p + 3] = alpha;
      }
    }
    k += n; on = !on;
  }
}

function draw() {
  const ov = $('overlay'), ctx = ov.getContext('2d');
  const { width: w, height: h } = image();
  const im = ctx.createImageData(w, h);
  for (const a of S.instances) {
    paintRuns(im.data, a.runs, h, w, color(a.category_id), S.selected === 'i' + a.id ? 200 : 110);
  }
  for (const p of S.proposals) {
    paintRuns(im.data, p.runs, h, w, [255, 255, 255], S.selected === 'p' + p.id ? 170 : 70);
  }
  if (S.cands) paintRuns(im.data, S.cands.candidates[S.sel].runs, h, w, [30, 144, 255], 150);
  ctx.putImageData(im, 0, 0);
  if (S.heat) ctx.drawImage(S.heat.img, 0, 0);
  const r = Math.max(2, w / 150);
  for (const [x, y, l] of S.prompt.points) {
    ctx.fillStyle = l ? '#2e2' : '#e22';
    ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fill();
  }
  const b = S.drag && S.drag.moved ? S.drag.box : S.prompt.box;
  if (b) {
    ctx.strokeStyle = '#ff0'; ctx.lineWidth = Math.max(1, w / 300);
    ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
  }
}

// ---------------------------------------------------------------- prompts
async function segment() {
  const seq = ++S.seq;
  const status = $('mask-status');
  status.dataset.ready = '0';
  if (!S.prompt.points.length && !S.prompt.box) {
    S.cands = null; status.textContent = 'click on an object'; draw(); return;
  }
  status.textContent = 'segmenting...';
  const res = await api('POST', '/api/segment',
    { image: image().name, points: S.prompt.points, box: S.prompt.box });
  if (seq !== S.seq) return; // a newer prompt is on its way
  S.cands = res; S.sel = res.best;
  showCandidate();
}

function showCandidate() {
  const c = S.cands.candidates[S.sel], n = S.cands.candidates.length;
  const status = $('mask-status');
  status.textContent = `SAM IoU ${c.iou.toFixed(3)}` + (n > 1 ? ` (mask ${S.sel + 1}/${n}, m)` : '') +
    ` · ${S.cands.ms} ms`;
  status.dataset.ready = '1'; status.dataset.iou = c.iou;
  draw();
}

function pushPrompt(change) {
  S.history.push(JSON.stringify(S.prompt));
  change(S.prompt);
  segment().catch(() => {});
}

function toImage(e) {
  const r = $('overlay').getBoundingClientRect();
  const { width: w, height: h } = image();
  return [Math.min(w, Math.max(0, (e.clientX - r.left) * w / r.width)),
    Math.min(h, Math.max(0, (e.clientY - r.top) * h / r.height))];
}

function onDown(e) {
  if (e.button !== 0 && e.button !== 2) return;
  S.drag = { start: toImage(e), neg: e.button === 2 || e.shiftKey, moved: false, box: null };
}

function onMove(e) {
  if (!S.drag) return;
  const [x, y] = toImage(e), [x0, y0] = S.drag.start;
  const r = $('overlay').getBoundingClientRect();
  if (Math.hypot(x - x0, y - y0) * r.width / image().width > 5) S.drag.moved = true;
  S.drag.box = [Math.min(x, x0), Math.min(y, y0), Math.max(x, x0), Math.max(y, y0)];
  if (S.drag.moved) draw();
}

function onUp(e) {
  if (!S.drag) return;
  const d = S.drag; S.drag = null;
  if (d.moved) pushPrompt((p) => { p.box = d.box; });
  else pushPrompt((p) => { p.points.push([d.start[0], d.start[1], d.neg ? 0 : 1]); });
}

function clearPrompt() {
  S.prompt = { points: [], box: null }; S.history = []; S.cands = null;
  $('mask-status').textContent = 'click on an object'; $('mask-status').dataset.ready = '0';
  draw();
}

async function undo() {
  if (S.history.length) {
    S.prompt = JSON.parse(S.history.pop());
    await segment();
  } else {
    await api('POST', '/api/undo');
    await refresh();
  }
}

async function addInstance() {
  if (!S.cands) { showError('no mask yet: click on an object'); return; }
  if (S.cls === null) { showError('pick a class first (1-9), or add one'); return; }
  const prompts = [{ points: S.prompt.points, box: S.prompt.box, mask_index: S.sel }];
  if (S.selected && S.selected[0] === 'p') {
    await api('POST', `/api/review/${S.selected.slice(1)}/accept`, { prompts });
  } else {
    await api('POST', '/api/instances', { image: image().name, category: String(S.cls), prompts });
  }
  S.selected = null;
  clearPrompt();
  await refresh();
  $('save-status').textContent = 'saved';
}

// ---------------------------------------------------------------- lists
function renderClasses() {
  const ol = $('classes'); ol.innerHTML = '';
  S.state.categories.forEach((c, i) => {
    const li = document.createElement('li');
    const [r, g, b] = color(c.id);
    li.innerHTML = `<span class="swatch" style="background:rgb(${r},${g},${b})"></span>`;
    li.append(c.name + (i < 9 ? ` [${i + 1}]` : ''));
    li.dataset.id = c.id;
    li.className = S.cls === c.id ? 'selected' : '';
    li.onclick = () => pickClass(c.id);
    ol.append(li);
  });
  for (const r of document.querySelectorAll('input[name=mode]')) r.checked = r.value === S.state.mode;
}

async function pickClass(cid) {
  S.cls = cid;
  if (S.selected && S.selected[0] === 'i') {
    await api('PATCH', `/api/instances/${S.selected.slice(1)}`, { category: String(cid) });
    await refresh();
  }
  renderClasses();
}

function catName(cid) {
  const c = S.state.categories.find((x) => x.id === cid);
  return c ? c.name : '?';
}

function renderLists() {
  const ul = $('instances'); ul.innerHTML = '';
  for (const a of S.instances) {
    const li = document.createElement('li');
    const iou = Array.isArray(a.sambox.sam_iou) ? a.sambox.sam_iou.join(', ') : a.sambox.sam_iou;
    li.textContent = `#${a.id} ${catName(a.category_id)} · IoU ${iou ?? '-'} `;
    li.className = S.selected === 'i' + a.id ? 'selected' : '';
    li.onclick = () => { S.selected = S.selected === 'i' + a.id ? null : 'i' + a.id; renderLists(); draw(); };
    const hm = document.createElement('button'); hm.textContent = '◎';
    hm.title = "SAMIC's heatmap of its clicks";
    hm.onclick = (e) => { e.stopPropagation(); toggleHeatmap(a.id); };
    li.append(hm);
    const del = document.createElement('button'); del.textContent = '×'; del.title = 'delete';
    del.onclick = async (e) => { e.stopPropagation(); await api('DELETE', `/api/instances/${a.id}`); await refresh(); };
    li.append(del); ul.append(li);
  }
  const pl = $('proposals'); pl.innerHTML = '';
  for (const p of S.proposals) {
    const li = document.createElement('li');
    li.textContent = `${catName(p.category_id)} ${p.score.toFixed(2)} `;
    li.className = S.selected === 'p' + p.id ? 'selected' : '';
    li.onclick = () => { S.selected = S.selected === 'p' + p.id ? null : 'p' + p.id; renderLists(); draw(); };
    for (const [label, act] of [['✓', 'accept'], ['✗', 'reject']]) {
      const b = document.createElement('button'); b.textContent = label; b.title = act;
      b.onclick = async (e) => { e.stopPropagation(); await api('POST', `/api/review/${p.id}/${act}`); await refresh(); };
      li.append(b);
    }
    pl.append(li);
  }
}

function toggleHeatmap(id) {
  if (S.heat && S.heat.id === id) { S.heat = null; draw(); return; }
  const img = new Image();
  img.onload = () => { S.heat = { id, img }; draw(); };
  img.src = `/api/instances/${id}/heatmap?t=${Date.now()}`;
}

async function refresh() {
  S.state = await api('GET', '/api/state');
  const name = encodeURIComponent(image().name);
  S.instances = await api('GET', `/api/instances?image=${name}`);
  S.proposals = (await api('GET', `/api/review?image=${name}`)).proposals;
  renderClasses(); renderLists(); draw();
  const f = S.state.find_rest;
  $('find-status').textContent = f.state === 'idle' ? '' :
    `${f.model}: ${f.state}` + (f.error ? ` (${f.error})` : f.state === 'done' ? `, ${f.proposals} proposals` : '');
  return f;
}

// ---------------------------------------------------------------- images
async function openImage(i) {
  S.index = (i + S.state.images.length) % S.state.images.length;
  delete document.body.dataset.image;
  S.selected = null; S.heat = null;
  clearPrompt();
  const im = image();
  $('image-name').textContent = `${S.index + 1}/${S.state.images.length} ${im.name}`;
  api('POST', `/api/images/${S.index}/focus`).catch(() => {});
  await new Promise((ok, fail) => { S.img.onload = ok; S.img.onerror = fail; S.img.src = `/api/images/${S.index}/file`; });
  for (const c of [$('image-canvas'), $('overlay')]) { c.width = im.width; c.height = im.height; }
  layout();
  $('image-canvas').getContext('2d').drawImage(S.img, 0, 0);
  await refresh();
  document.body.dataset.image = String(S.index); // shown and laid out
}

function layout() {
  // the whole image in the window, beside the side panel
  const im = image(), st = $('stage');
  const scale = Math.min((window.innerWidth - 310) / im.width, (window.innerHeight - 70) / im.height);
  st.style.width = `${Math.floor(im.width * scale)}px`;
  st.style.height = `${Math.floor(im.height * scale)}px`;
}

async function pollProgress() {
  const p = await api('GET', '/api/progress');
  $('progress-bar').style.width = `${100 * p.done / p.total}%`;
  $('progress-text').textContent = `embeddings ${p.done}/${p.total}`;
  if (!p.finished) setTimeout(pollProgress, 1000);
}

async function findRest() {
  if (!S.selected || S.selected[0] !== 'i') { showError('select an annotated instance as the reference'); return; }
  await api('POST', '/api/find_rest', { model: $('model').value, instance_ids: [Number(S.selected.slice(1))] });
  const poll = async () => { const f = await refresh(); if (f.state === 'running') setTimeout(poll, 1000); };
  poll();
}

async function nextProposal() {
  const all = (await api('GET', '/api/review')).proposals;
  const names = S.state.images.map((x) => x.name);
  const after = all.map((p) => names.indexOf(p.image)).filter((i) => i !== S.index).sort((a, b) => a - b);
  if (!after.length) { showError('no pending proposal on other images'); return; }
  await openImage(after.find((i) => i > S.index) ?? after[0]);
}

function onKey(e) {
  if (e.target.tagName === 'INPUT') return;
  const k = e.key;
  if (k >= '1' && k <= '9' && S.state.categories[k - 1]) pickClass(S.state.categories[k - 1].id);
  else if (k === 'Enter') addInstance();
  else if (k === 'Escape') { S.selected = null; clearPrompt(); renderLists(); }
  else if (k === 'z') undo();
  else if (k === 'm' && S.cands) { S.sel = (S.sel + 1) % S.cands.candidates.length; showCandidate(); }
  else if (k === 'a' || k === 'ArrowLeft') openImage(S.index - 1);
  else if (k === 'd' || k === 'ArrowRight') openImage(S.index + 1);
  else return;
  e.preventDefault();
}

async function main() {
  S.state = await api('GET', '/api/state');
  if (S.state.categories.length) S.cls = S.state.categories[0].id;
  $('model').innerHTML = S.state.models.map((m) => `<option>${m}</option>`).join('');
  $('skipped').innerHTML = S.state.skipped.map((s) => `<li>skipped ${s.file}: ${s.reason}</li>`).join('');
  const ov = $('overlay');
  ov.addEventListener('mousedown', onDown);
  window.addEventListener('mousemove', onMove);
  window.addEventListener('mouseup', onUp);
  ov.addEventListener('contextmenu', (e) => e.preventDefault());
  document.addEventListener('keydown', onKey);
  window.addEventListener('resize', () => { if (S.state) layout(); });
  $('prev').onclick = () => openImage(S.index - 1);
  $('next').onclick = () => openImage(S.index + 1);
  $('add').onclick = addInstance;
  $('save').onclick = async () => { const r = await api('POST', '/api/save'); $('save-status').textContent = `saved ${r.annotations}`; };
  $('find').onclick = findRest;
  $('next-proposal').onclick = nextProposal;
  $('class-form').onsubmit = async (e) => {
    e.preventDefault();
    const r = await api('POST', '/api/categories', { name: $('class-name').value });
    $('class-name').value = ''; S.cls = r.id; await refresh();
  };
  for (const r of document.querySelectorAll('input[name=mode]')) {
    r.onchange = async () => { await api('POST', '/api/mode', { mode: r.value }); await refresh(); };
  }
  pollProgress();
  await openImage(0);
}

main();
