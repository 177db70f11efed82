/* marshrut: the planners' page. Plain JavaScript, hand-written SVG charts, no external assets. */
"use strict";

// ------------------------------------------------------------------------------------------------
// formatting: Russian conventions (thousands separated by a space, decimal comma, «1 000 ₽»)
// ------------------------------------------------------------------------------------------------
const LOCALE = "ru-RU";
const NF = {};
function nf(digits) {
  const key = String(digits);
  if (!NF[key]) NF[key] = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return NF[key];
}
const RUB = new Intl.NumberFormat(LOCALE, { style: "currency", currency: "RUB", minimumFractionDigits: 0, maximumFractionDigits: 0 });
const PCT = new Intl.NumberFormat(LOCALE, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
const fmt = {
  int: (v) => (v == null ? "—" : nf(0).format(Math.round(v))),
  num: (v, d = 2) => (v == null ? "—" : nf(d).format(v)),
  rub: (v) => (v == null ? "—" : RUB.format(Math.round(v))),
  pct: (v) => (v == null || !isFinite(v) ? "—" : PCT.format(v)),
  share: (a, b) => (b > 0 ? PCT.format(a / b) : "—"),
  sec: (v) => (v == null ? "—" : nf(v < 10 ? 1 : 0).format(v) + " с"),
  date: (iso) => (iso ? iso.slice(8, 10) + "." + iso.slice(5, 7) + "." + iso.slice(0, 4) : "—"),
  datetime: (iso) => (iso ? new Date(iso).toLocaleString(LOCALE, { dateStyle: "short", timeStyle: "short" }) : "—"),
};
const MONTH = new Intl.DateTimeFormat(LOCALE, { month: "short", timeZone: "UTC" });

const KIND = { mentor: "Наставник", internship: "Стажировка", program: "Программа ДПП" };
const KIND_LOWER = { mentor: "наставники", internship: "сессии стажировок", program: "сессии программ" };
const KIND_PLURAL = { mentor: "Наставники (места)", internship: "Стажировки (места на сессиях)", program: "Программы ДПП (места на сессиях)" };
const STATUS = { queued: "в очереди", running: "идёт расчёт", done: "готов", failed: "ошибка", cancelled: "отменён" };
const SOLVE_STATUS = { OPTIMAL: "оптимален (доказано)", FEASIBLE: "допустимый (оптимальность не доказана)" };

function phaseName(phase) {
  if (!phase) return "";
  if (phase.startsWith("lns")) return "поиск в окрестностях";
  return ({ greedy: "жадный старт", bound: "граница (LP)", lp: "граница (LP)", "lp-rounding": "округление LP", rounding: "округление LP",
            mip: "точная модель (MIP)", "cp-sat": "CP-SAT", done: "завершение" })[phase] || phase;
}

// ------------------------------------------------------------------------------------------------
// DOM and SVG helpers
// ------------------------------------------------------------------------------------------------
const $ = (sel, root = document) => root.querySelector(sel);
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}
const SVGNS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}
function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") node.setAttribute("class", v);
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
}
function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}
function clear(node) { while (node.firstChild) node.firstChild.remove(); return node; }
function title(text) { return s("title", { text }); }

// text widths for SVG layout (the labels are drawn at their real size, never scaled down)
const MEASURE = document.createElement("canvas").getContext("2d");
let FONT = "system-ui, sans-serif";
function textWidth(text, size = 12, weight = 400) {
  MEASURE.font = `${weight} ${size}px ${FONT}`;
  return MEASURE.measureText(String(text)).width;
}
function fit(text, width, size = 12, weight = 400) {
  text = String(text || "");
  if (textWidth(text, size, weight) <= width) return text;
  let lo = 0, hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (textWidth(text.slice(0, mid) + "…", size, weight) <= width) lo = mid; else hi = mid - 1;
  }
  return text.slice(0, lo).trimEnd() + "…";
}
function widthOf(node, fallback) {
  const w = Math.floor(node.clientWidth || 0);
  return w > 50 ? w : fallback;
}

// charts drawn to their container's width, drawn again when that width changes
const CHARTS = new Map();  // key -> {node, draw, width}
const RESIZE = typeof ResizeObserver === "function" ? new ResizeObserver((entries) => {
  for (const entry of entries) {
    for (const item of CHARTS.values()) {
      if (item.node !== entry.target) continue;
      const width = Math.floor(entry.contentRect.width);
      if (width > 50 && Math.abs(width - item.width) > 2) { item.width = width; try { item.draw(); } catch (error) { /* closed */ } }
    }
  }
}) : null;
function chart(key, node, draw) {
  const old = CHARTS.get(key);
  if (old && RESIZE && old.node !== node) RESIZE.unobserve(old.node);
  CHARTS.set(key, { node, draw, width: Math.floor(node.clientWidth) });
  draw();
  if (RESIZE) RESIZE.observe(node);
}

// ------------------------------------------------------------------------------------------------
// the API
// ------------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}
function apiKey() { return sessionStorage.getItem("marshrut-api-key") || ""; }
function headers(extra) {
  const key = apiKey();
  return Object.assign(key ? { "X-API-Key": key } : {}, extra || {});
}
async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers: headers(options.headers) }));
  } catch (error) {
    throw new ApiError(0, { detail: "Сервис недоступен: проверьте, что marshrut запущен (network error)" });
  }
  let body = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) body = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) showBanner("Сервис просит ключ API: введите его вверху справа («Ключ API»).");
    throw new ApiError(response.status, body);
  }
  return body;
}

function showBanner(text) {
  const banner = $("#banner");
  banner.textContent = text;
  banner.hidden = !text;
  if (text && text.includes("ключ")) $("#apikey-box").open = true;
}

// ------------------------------------------------------------------------------------------------
// state
// ------------------------------------------------------------------------------------------------
const state = {
  region: null,        // RegionOut
  map: null,           // /v1/regions/{id}/map
  plan: null,          // PlanOut
  history: [],         // [{t, objective, bound}] seen while polling
  teachers: [],        // [{teacher_id, cluster, profile}]
  compNames: {},
  munNames: {},
  nation: null,        // NationOut (section 4)
  nationPlan: null,    // PlanOut of the nation's plan shown
};

function setHash() {
  const parts = [];
  if (state.region) parts.push("region=" + state.region.region_id);
  if (state.plan) parts.push("plan=" + state.plan.plan_id);
  if (state.nation) parts.push("nation=" + state.nation.nation_id);
  if (state.nationPlan) parts.push("nation-plan=" + state.nationPlan.plan_id);
  if (parts.length) history.replaceState(null, "", location.pathname + location.search + "#" + parts.join("&"));
}
function readHash() {
  const out = {};
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    const [k, v] = part.split("=");
    if (k && v) out[k] = decodeURIComponent(v);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// 1. Region
// ------------------------------------------------------------------------------------------------
function setStatus(node, text, kind) {
  node.textContent = text || "";
  node.className = "status" + (kind ? " " + kind : "");
}

/** An upload of a bundle (a region's or a nation's): checked whole by the server, accepted, or its problems listed. */
async function uploadFile({ input, button, status, url, problems, what, onAccepted }) {
  const file = input.files && input.files[0];
  if (!file) { setStatus(status, `Выберите файл ${input.accept.split(",").slice(0, 2).join(" или ")}.`, "error"); input.focus(); return; }
  problems.hide();
  setStatus(status, `Проверяем «${file.name}»…`, "busy");
  button.disabled = true;
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const accepted = await api(url, { method: "POST", body: form });
    setStatus(status, `${what} «${file.name}» принят: ошибок нет.`, "ok");
    await onAccepted(accepted);
  } catch (error) {
    if (error.body && error.body.problems && error.body.problems.length) {
      setStatus(status, `${what} «${file.name}» не принят: ${error.body.detail || "есть ошибки"}.`, "error");
      problems.show(error.body);
    } else {
      setStatus(status, `${what} «${file.name}» не принят: ${error.message}`, "error");
    }
  } finally {
    button.disabled = false;
  }
}

async function uploadBundle(event) {
  event.preventDefault();
  await uploadFile({ input: $("#bundle-file"), button: $("#upload-button"), status: $("#upload-status"), url: "/v1/regions",
                     problems: REGION_PROBLEMS, what: "Набор", onAccepted: async (region) => {
                       await refreshRegionList(region.region_id);
                       await openRegion(region);
                     } });
}

/** The problems of an upload as a table (`#<prefix>` and its `-title`, `-summary`, `-filter`, `-csv`, `-table`),
 *  with a filter by file and a CSV of them. A nation's names its regions' files `<region_id>/<file>`: with
 *  `regions` the table has the region in a column of its own. */
class ProblemsList {
  constructor(prefix, { regions = false } = {}) {
    this.prefix = prefix;
    this.regions = regions;
    this.problems = [];
  }
  part(suffix) { return $(`#${this.prefix}${suffix}`); }
  /** Builds the list's parts inside its empty `#<prefix>` box. */
  build(title, scrollLabel) {
    const id = (suffix) => this.prefix + suffix;
    const columns = ["№", this.regions ? "Регион" : null, "Файл", "Строка", "Столбец", "Значение", "Что не так"];
    clear(this.part("")).append(
      h("h3", { id: id("-title"), text: title }),
      h("p", { id: id("-summary") }),
      h("div", { class: "buttons" },
        h("label", { for: id("-filter"), text: "Файл:" }),
        h("select", { id: id("-filter") }, h("option", { value: "", text: "все файлы" })),
        h("button", { type: "button", id: id("-csv"), text: "Скачать список ошибок (CSV)" })),
      h("div", { class: "table-scroll", tabindex: "0", "aria-label": scrollLabel },
        h("table", { id: id("-table") },
          h("thead", {}, h("tr", {}, columns.filter(Boolean).map((c) => h("th", { scope: "col", text: c })))),
          h("tbody"))));
    this.part("-filter").addEventListener("change", (e) => this.render(e.target.value));
    this.part("-csv").addEventListener("click", () => this.csv());
  }
  hide() { this.part("").hidden = true; this.problems = []; }
  show(body) {
    this.problems = body.problems || [];
    const box = this.part("");
    this.part("-title").textContent = body.detail || "Ошибки в наборе данных";
    const total = body.total || this.problems.length;
    const shown = body.shown || this.problems.length;
    this.part("-summary").textContent = total === 1 ? "Найдена 1 ошибка. Исправьте файл и загрузите его снова."
      : `Найдено ошибок: ${fmt.int(total)}` + (shown < total ? ` (показаны первые ${fmt.int(shown)})` : "") +
        ". Исправьте файл и загрузите его снова.";
    const files = [...new Set(this.problems.map((p) => p.file))].sort();
    const filter = this.part("-filter");
    clear(filter).append(h("option", { value: "", text: "все файлы" }));
    for (const f of files) {
      const n = this.problems.filter((p) => p.file === f).length;
      filter.append(h("option", { value: f, text: `${f} (${fmt.int(n)})` }));
    }
    this.render("");
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }
  render(file) {
    const tbody = clear(this.part("-table tbody"));
    this.problems.forEach((p, i) => {
      if (file && p.file !== file) return;
      // a nation's region file is `<region_id>/<file>`; its own (federal) files have no region
      const slash = this.regions ? (p.file || "").indexOf("/") : -1;
      tbody.append(h("tr", { dataset: { code: p.code || "" } },
        h("td", { class: "num", text: String(i + 1) }),
        this.regions ? h("td", {}, slash > 0 ? h("code", { text: p.file.slice(0, slash) }) : "вся страна") : null,
        h("td", {}, h("code", { text: slash > 0 ? p.file.slice(slash + 1) : p.file || "" })),
        h("td", { class: "num", text: p.row == null ? "—" : fmt.int(p.row) }),
        h("td", {}, p.column ? h("code", { text: p.column }) : "—"),
        h("td", { class: "value-cell" }, p.value == null || p.value === "" ? "—" : h("code", { text: p.value })),
        h("td", { text: p.message || "" })));
    });
  }
  csv() {
    const quote = (v) => (v == null ? "" : /[",;\n]/.test(String(v)) ? '"' + String(v).replace(/"/g, '""') + '"' : String(v));
    const lines = ["file,row,column,value,message,code"].concat(
      this.problems.map((p) => [p.file, p.row, p.column, p.value, p.message, p.code].map(quote).join(",")));
    download(new Blob(["\ufeff" + lines.join("\n") + "\n"], { type: "text/csv;charset=utf-8" }), "problems.csv");
  }
}
const REGION_PROBLEMS = new ProblemsList("problems");
const NATION_PROBLEMS = new ProblemsList("nation-problems", { regions: true });

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** A «pick one uploaded before» list (`#<prefix>-select` and its `-hint`): the tenant's, newest first. */
async function fillPicker(prefix, url, { id, label, choose, none, loaded }, selected) {
  const select = $(`#${prefix}-select`);
  let items = [];
  try { items = await api(url); } catch (error) { return; }
  clear(select);
  select.append(h("option", { value: "", text: items.length ? choose : none }));
  for (const item of items) select.append(h("option", { value: item[id], text: label(item) }));
  if (selected) select.value = selected;
  $(`#${prefix}-select-hint`).textContent = items.length ? `${loaded}: ${fmt.int(items.length)}.` : "";
}

async function refreshRegionList(selected) {
  await fillPicker("region", "/v1/regions?limit=100", {
    id: "region_id", choose: "— выберите регион —", none: "— регионы не загружены —", loaded: "Загружено регионов",
    label: (r) => `${r.name} · ${fmt.int(r.teachers)} пед. · ${fmt.datetime(r.created_at)}` }, selected);
}

async function openRegion(region) {
  stopPolling();
  state.region = region;
  state.plan = null;
  state.map = null;
  renderRegion(region);
  $("#plan-needs-region").hidden = true;
  $("#plan-form").hidden = false;
  $("#progress").hidden = true;
  $("#plan-problems").hidden = true;
  showResults(false);
  setHash();
  try {
    state.map = await api(`/v1/regions/${region.region_id}/map`);
    state.compNames = Object.fromEntries(state.map.competencies.map((c) => [c.competency_id, c]));
    state.munNames = Object.fromEntries(state.map.municipalities.map((m) => [m.municipality_id, m.name]));
    renderRegion(region);
  } catch (error) { /* the figures are there; names fall back to ids */ }
  await refreshPlans();
}

function figure(label, value, sub, attrs) {
  return h("div", Object.assign({ class: "figure" }, attrs || {}),
    h("div", { class: "value", text: value }), h("div", { class: "label", text: label }), sub ? h("div", { class: "sub", text: sub }) : null);
}

function renderRegion(r) {
  $("#region-info").hidden = false;
  $("#region-name").textContent = r.name;
  const map = state.map;
  const period = map ? `период ${fmt.date(map.period[0])} — ${fmt.date(map.period[1])} · ` : "";
  $("#region-meta").textContent = `${period}файл ${r.filename} · загружен ${fmt.datetime(r.created_at)}`;
  const municipal = map ? map.municipalities.reduce((sum, m) => sum + (m.budget_rub || 0), 0) : null;
  const withBudget = map ? map.municipalities.filter((m) => m.budget_rub != null).length : 0;
  const box = clear($("#region-figures"));
  box.append(
    figure("педагогов", fmt.int(r.teachers), null, { dataset: { key: "teachers" } }),
    figure("школ", fmt.int(r.schools), null, { dataset: { key: "schools" } }),
    figure("муниципалитетов", fmt.int(r.municipalities), null, { dataset: { key: "municipalities" } }),
    figure("компетенций в диагностике", fmt.int(r.competencies), null, { dataset: { key: "competencies" } }),
    figure("наставников", fmt.int(r.mentors), `мест: ${fmt.int(r.mentor_places)}`, { dataset: { key: "mentors" } }),
    figure("стажировочных площадок", fmt.int(r.sites), `сессий: ${fmt.int(r.site_sessions)}, мест: ${fmt.int(r.site_seats)}`, { dataset: { key: "sites" } }),
    figure("программ ДПП", fmt.int(r.programs), `сессий: ${fmt.int(r.program_sessions)}, мест: ${fmt.int(r.program_seats)}`, { dataset: { key: "programs" } }),
    figure("бюджет региона", fmt.rub(r.region_budget_rub), null, { dataset: { key: "region_budget_rub" } }),
    municipal != null ? figure("бюджеты муниципалитетов", fmt.rub(municipal), `у ${fmt.int(withBudget)} из ${fmt.int(r.municipalities)}`, { dataset: { key: "municipal_budgets_rub" } }) : null,
    figure("сертификаты педагогов", fmt.rub(r.vouchers_rub), "персонифицированное финансирование ДПО", { dataset: { key: "vouchers_rub" } }),
  );
}

// ------------------------------------------------------------------------------------------------
// 2. Plan: parameters, start, progress, cancel
// ------------------------------------------------------------------------------------------------
const PARAMS = [
  { key: "time_limit_s", label: "Время расчёта, секунд", def: 60, min: 1, step: "any",
    hint: "Чем дольше, тем ближе план к лучшему возможному; доказанная граница показывает, насколько близко." },
  { key: "deficit_threshold", label: "Порог дефицита, балл", def: 70, min: 1, max: 100, step: "any",
    hint: "Результат диагностики ниже порога считается дефицитом (шкала 0–100)." },
  { key: "low_results_priority", label: "Приоритет школ с низкими результатами", def: 1.5, min: 0, step: "any",
    hint: "Во сколько раз важнее потребность педагогов школ с низкими образовательными результатами (ШНОР)." },
  { key: "rub_per_point", label: "Цена балла, ₽", def: 100000, min: 1, step: "any",
    hint: "Сколько рублей стоит один балл закрытой потребности. Меньше — план бережливее, больше — щедрее." },
  { key: "max_travel_minutes", label: "Дорога до очного мероприятия, не дольше, мин", def: 180, min: 0, step: "any",
    hint: "Стажировки, очные программы и наставники не в своей школе — только в пределах этого времени в пути." },
  { key: "max_internships", label: "Стажировок на педагога, не больше", def: 1, min: 0, step: 1,
    hint: "Сессий стажировочных площадок в маршруте одного педагога." },
  { key: "max_programs", label: "Программ ДПП на педагога, не больше", def: 2, min: 0, step: 1,
    hint: "Сессий программ повышения квалификации, оплачиваемых из сертификата педагога." },
  { key: "mentor_from_other_school", label: "Наставник только из другой школы", def: true, type: "checkbox",
    hint: "Наставник не наставляет педагогов своей школы." },
  { key: "training_due_years", label: "Срок повышения квалификации, лет", def: 3, min: 0, max: 100, step: 1,
    hint: "Педагог, обучавшийся последний раз столько лет назад или раньше (к концу периода), идёт в первую очередь (273-ФЗ, ст. 47)." },
  { key: "training_due_priority", label: "Приоритет педагогов с истёкшим сроком", def: 1.5, min: 0, max: 1000, step: "any",
    hint: "Во сколько раз потребность такого педагога весит больше." },
  { key: "floor_due", nest: ["min_reached_share", "due"], label: "Охватить педагогов с истёкшим сроком, не меньше %",
    def: 0, min: 0, max: 100, step: "any", scale: 0.01,
    hint: "Жёсткая нижняя граница доли охваченных (0 — не задана). Если её не достичь, план скажет почему и во что она обходится." },
  { key: "floor_low_results", nest: ["min_reached_share", "low_results"],
    label: "Охватить педагогов школ с низкими результатами, не меньше %", def: 0, min: 0, max: 100, step: "any", scale: 0.01,
    hint: "Доля педагогов с дефицитами из школ «500+» (ШНОР), получивших хотя бы одно назначение (0 — не задана)." },
];

/** A plan's parameter form: the §3 parameters (`#<prefix><key>` inside `#<box>`), the pinned and forbidden
 *  text boxes (`#<refs>pinned`, `#<refs>forbidden`) and the box of its problems. The region's form and the
 *  nation's share it; a nation's pinned and forbidden lines start with the region (`regional`). */
class ParamsForm {
  constructor({ params, prefix, box, refs, problems, regional = false }) {
    Object.assign(this, { params, prefix, box, refs, problemsBox: problems, regional });
    this.refLines = {};  // pinned/forbidden: list index -> line of the text box
  }
  input(p) { return $("#" + this.prefix + p.key); }
  refsBox(field) { return $("#" + this.refs + field); }

  build() {
    const box = clear($("#" + this.box));
    for (const p of this.params) {
      const id = this.prefix + p.key;
      const hintId = id + "-hint";
      if (p.type === "checkbox") {
        box.append(h("div", { class: "param check" },
          h("label", { for: id }, h("input", { type: "checkbox", id, name: p.key, checked: p.def, "aria-describedby": hintId }), p.label),
          h("p", { class: "hint", id: hintId, text: p.hint + " По умолчанию: да." })));
      } else {
        box.append(h("div", { class: "param" },
          h("label", { for: id, text: p.label }), h("br"),
          h("input", { type: "text", id, name: p.key, value: paramText(p.def), required: true,
                       inputmode: p.step === 1 ? "numeric" : "decimal", autocomplete: "off", "aria-describedby": hintId }),
          h("span", { class: "default", text: `по умолчанию ${paramText(p.def)}` }),
          h("p", { class: "hint", id: hintId, text: p.hint })));
      }
    }
  }

  reset() {
    for (const p of this.params) {
      if (p.type === "checkbox") this.input(p).checked = p.def; else this.input(p).value = paramText(p.def);
    }
    this.refsBox("pinned").value = "";
    this.refsBox("forbidden").value = "";
  }

  fill(params) {
    for (const p of this.params) {
      const value = p.nest ? (params[p.nest[0]] || {})[p.nest[1]] : params[p.key];
      if (value == null && p.nest) { this.input(p).value = paramText(p.def); continue; }
      if (value == null) continue;
      if (p.type === "checkbox") this.input(p).checked = !!value; else this.input(p).value = paramText(p.scale ? value / p.scale : value);
    }
    for (const field of ["pinned", "forbidden"]) {
      const list = Array.isArray(params[field]) ? params[field] : [];
      this.refsBox(field).value = list.map((r) => (this.regional ? `${r.region_id}; ` : "") +
                                                  `${r.teacher_id}; ${r.kind}; ${r.resource_id}`).join("\n");
      this.refLines[field] = list.map((r, i) => i + 1);  // written in the list's order
    }
  }

  /** The lines of a pinned or forbidden box: `[region;] teacher; kind; resource`, a problem for any other. */
  parseRefs(field, problems) {
    const shape = (this.regional ? "регион; " : "") + "педагог; вид; ресурс";
    const width = this.regional ? 4 : 3;
    const found = [];
    this.refsBox(field).value.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim()) return;
      const parts = line.split(/[;,\t]/).map((x) => x.trim());
      const [teacher_id, kind, resource_id] = parts.slice(width - 3);
      if (parts.length !== width || !parts.every(Boolean) || !["mentor", "internship", "program"].includes(kind)) {
        problems.push({ file: "params", row: i + 1, column: field === "pinned" ? "Обязательно включить" : "Не включать", value: line,
                        message: `нужно «${shape}», вид — mentor, internship или program`, code: "bad_line" });
        return;
      }
      const ref = this.regional ? { region_id: parts[0], teacher_id, kind, resource_id } : { teacher_id, kind, resource_id };
      found.push({ ref, line: i + 1 });
    });
    this.refLines[field] = found.map((x) => x.line);
    return found.map((x) => x.ref);
  }

  read() {
    const params = {};
    const problems = [];
    for (const p of this.params) {
      const input = this.input(p);
      if (p.type === "checkbox") { params[p.key] = input.checked; continue; }
      const value = readNumber(p, input, problems);
      if (value == null) continue;
      if (p.nest) {
        if (value > 0) (params[p.nest[0]] = params[p.nest[0]] || {})[p.nest[1]] = value * p.scale;
      } else params[p.key] = value;
    }
    params.pinned = this.parseRefs("pinned", problems);
    params.forbidden = this.parseRefs("forbidden", problems);
    return { params, problems };
  }

  /** Problems of the parameters, the page's or the server's, each with the field and the line it is about. */
  showProblems(body) {
    const box = clear($("#" + this.problemsBox));
    if (!body) { box.hidden = true; return; }
    const where = (p) => {
      // the server names `params.pinned.3.resource_id` (an entry by its index), or `params.pinned.region_id`
      // with the entry's number as the row: show the field and the line of the text box
      const ref = /^(?:params\.)?(pinned|forbidden)(?:\.(\d+))?(?:\.(\w+))?$/.exec(p.column || "");
      if (ref) {
        const index = ref[2] != null ? Number(ref[2]) : p.row != null ? p.row - 1 : null;
        const line = index == null ? null : (this.refLines[ref[1]] || [])[index] || index + 1;
        return [(ref[1] === "pinned" ? "Обязательно включить" : "Не включать") + (ref[3] ? ` (${ref[3]})` : ""), line];
      }
      const key = (p.column || "").replace(/^params\./, "");
      const param = this.params.find((x) => x.key === key || (x.nest && x.nest.join(".") === key));
      return [param ? param.label : p.column, p.row];
    };
    const rows = (body.problems || []).map((p) => {
      const [field, line] = where(p);
      return h("tr", {},
        h("td", {}, field ? h("code", { text: field }) : "—"),
        h("td", { text: line == null ? "—" : String(line) }),
        h("td", { class: "value-cell" }, p.value == null ? "—" : h("code", { text: p.value })),
        h("td", { text: p.message || "" }));
    });
    box.append(h("h3", { text: body.detail || "Ошибки в параметрах плана" }));
    if (rows.length) {
      box.append(h("div", { class: "table-scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Параметр" }), h("th", { text: "Строка" }), h("th", { text: "Значение" }), h("th", { text: "Что не так" }))),
        h("tbody", {}, rows))));
    }
    box.hidden = false;
  }
}
const REGION_FORM = new ParamsForm({ params: PARAMS, prefix: "param-", box: "params", refs: "", problems: "plan-problems" });

function paramText(value) {
  return typeof value === "number" ? nf(0).format(Math.trunc(value)) + (Number.isInteger(value) ? ""
    : "," + String(value).split(".")[1]) : String(value);
}

/** A number typed the Russian way (spaces, decimal comma) within the parameter's range; null and a problem otherwise. */
function readNumber(p, input, problems) {
  const raw = String(input.value).replace(/[\s\u00a0\u202f]/g, "").replace(",", ".");
  const value = Number(raw);
  if (raw === "" || !isFinite(value)) {
    problems.push({ file: "params", column: p.key, value: input.value, message: `«${p.label}»: нужно число`, code: "not_a_number" });
  } else if (p.step === 1 && !Number.isInteger(value)) {
    problems.push({ file: "params", column: p.key, value: input.value, message: `«${p.label}»: нужно целое число`, code: "not_an_integer" });
  } else if ((p.min != null && value < p.min) || (p.max != null && value > p.max)) {
    problems.push({ file: "params", column: p.key, value: input.value, code: "out_of_range",
                    message: `«${p.label}»: ` + (p.max != null ? `от ${paramText(p.min)} до ${paramText(p.max)}` : `не меньше ${paramText(p.min)}`) });
  } else return value;
  return null;
}

async function startPlan(event) {
  event.preventDefault();
  if (!state.region) return;
  const { params, problems } = REGION_FORM.read();
  if (problems.length) { REGION_FORM.showProblems({ detail: "Ошибки в параметрах плана", problems }); return; }
  REGION_FORM.showProblems(null);
  $("#start-button").disabled = true;
  try {
    const created = await api("/v1/plans", { method: "POST", headers: { "content-type": "application/json" },
                                             body: JSON.stringify({ region_id: state.region.region_id, params }) });
    showResults(false);
    state.history = [];
    await followPlan(created.plan_id);
    refreshPlans();
  } catch (error) {
    REGION_FORM.showProblems(error.body && error.body.problems ? error.body : { detail: error.message, problems: [] });
    $("#start-button").disabled = false;
  }
}

/** Cancels a job (a region's or a nation's plan) if it is still queued or running; gives the job as it is then. */
async function cancelJob(planId) {
  // DELETE on a finished plan would delete it: only a plan still queued or running is cancelled
  const now = await api(`/v1/plans/${planId}`);
  if (now.status !== "queued" && now.status !== "running") return now;
  return (await api(`/v1/plans/${planId}`, { method: "DELETE" })) || await api(`/v1/plans/${planId}`);
}

async function cancelPlan() {
  if (!state.plan) return;
  $("#cancel-button").disabled = true;
  try {
    const plan = await cancelJob(state.plan.plan_id);
    stopPolling();
    onPlan(plan);
  } catch (error) {
    setStatus($("#plan-status"), "Не удалось отменить: " + error.message, "error");
  }
}

// the region's plan and the nation's plan are followed each on its own timer
const POLL = { region: null, nation: null };
function stopPolling(slot = "region") {
  if (POLL[slot]) clearTimeout(POLL[slot]);
  POLL[slot] = null;
}

/** Asks for a queued or running job again shortly and hands it to `update`; a lost connection is retried. */
function pollPlan(slot, planId, update, statusNode, delay = 400) {
  stopPolling(slot);
  POLL[slot] = setTimeout(async () => {
    try {
      update(await api(`/v1/plans/${planId}`));
    } catch (error) {
      setStatus(statusNode, "Связь с сервисом потеряна, повторяем… " + error.message, "error");
      pollPlan(slot, planId, update, statusNode, 2000);
    }
  }, delay);
}

async function followPlan(planId) {
  stopPolling();
  const plan = await api(`/v1/plans/${planId}`);
  if (!state.plan || state.plan.plan_id !== planId) state.history = [];
  state.plan = plan;
  setHash();
  onPlan(plan);
}

function onPlan(plan) {
  const before = state.plan && state.plan.plan_id === plan.plan_id ? state.plan.status : null;
  state.plan = plan;
  if (before && before !== plan.status && (plan.status === "running")) refreshPlans();
  const active = plan.status === "queued" || plan.status === "running";
  $("#progress").hidden = false;
  $("#start-button").disabled = active;
  $("#cancel-button").disabled = !active;
  const progress = plan.progress || {};
  if (progress.objective != null) {
    const t = progress.elapsed || 0;
    const last = state.history[state.history.length - 1];
    if (!last || t > last.t + 1e-6 || last.objective !== progress.objective || last.bound !== progress.bound) {
      state.history.push({ t: Math.max(t, last ? last.t : 0), objective: progress.objective, bound: progress.bound });
    }
  }
  renderProgress(plan);
  if (active) {
    pollPlan("region", plan.plan_id, (next) => { if (state.plan && state.plan.plan_id === plan.plan_id) onPlan(next); },
             $("#plan-status"));
  } else {
    refreshPlans();
    if (plan.status === "done") loadResults(plan);
    if (plan.status === "failed" && plan.error) REGION_FORM.showProblems(plan.error);
  }
}

/** Elapsed time, objective, bound and gap of a job: its summary's once done, its progress while it runs. */
function progressFigures(plan, limit) {
  const p = plan.progress || {};
  const summary = plan.summary || {};
  const objective = summary.objective != null ? summary.objective : p.objective;
  const bound = summary.bound != null ? summary.bound : p.bound;
  const gap = summary.gap != null ? summary.gap : p.gap;
  const elapsed = plan.status === "done" && summary.solve_seconds != null ? summary.solve_seconds : p.elapsed;
  return [
    figure("прошло", fmt.sec(elapsed), `из ${fmt.sec(limit)}`, { dataset: { key: "elapsed" } }),
    figure("целевая функция", fmt.num(objective, 3), "лучший план", { dataset: { key: "objective" } }),
    figure("верхняя граница", fmt.num(bound, 3), "лучше не бывает", { dataset: { key: "bound" } }),
    figure("разрыв", fmt.pct(gap), "до доказанного оптимума",
           { class: "figure" + (gap != null && gap < 1e-4 ? " good" : ""), dataset: { key: "gap" } }),
  ];
}

function renderProgress(plan) {
  const p = plan.progress || {};
  const limit = (plan.params && plan.params.time_limit_s) || 60;
  const statusNode = $("#plan-status");
  const kind = plan.status === "done" ? "ok" : plan.status === "failed" ? "error" : plan.status === "cancelled" ? "" : "busy";
  let text = `План: ${STATUS[plan.status] || plan.status}`;
  if (plan.status === "done" && plan.summary) text += ` · ${SOLVE_STATUS[plan.summary.status] || plan.summary.status}`;
  if (plan.status === "cancelled") text += " · лучший найденный план не сохранён";
  setStatus(statusNode, text, kind);
  statusNode.dataset.status = plan.status;
  const summary = plan.summary || {};
  clear($("#progress-figures")).append(...progressFigures(plan, limit),
    figure("этап", plan.status === "queued" ? "ожидание" : plan.status === "running" ? (phaseName(p.phase) || "подготовка") : STATUS[plan.status],
           plan.status === "queued" ? "ждёт свободного решателя" : plan.attempt > 1 ? `запуск № ${plan.attempt}` : "решатель", { class: "figure phase" }));
  const share = plan.status === "done" ? 1 : Math.min(1, (p.elapsed || 0) / limit);
  $("#timebar-fill").style.width = (share * 100).toFixed(1) + "%";
  // a finished plan whose summary keeps the solver's own history draws that; otherwise what was seen while polling
  const saved = Array.isArray(summary.progress_history) ? summary.progress_history
    .filter((e) => e.objective != null).map((e) => ({ t: e.elapsed, objective: e.objective, bound: e.bound })) : [];
  const points = saved.length ? saved : state.history.slice();
  if (plan.status === "done" && summary.objective != null) {
    const t = Math.max(summary.solve_seconds || 0, points.length ? points[points.length - 1].t : 0);
    points.push({ t, objective: summary.objective, bound: summary.bound });
  }
  const note = plan.status !== "running" && plan.status !== "queued" && !saved.length && state.history.length < 2
    ? "Ход расчёта виден, пока план считается на этой странице; для плана, открытого после расчёта, показан итог." : null;
  chart("progress", $("#progress-chart"), () => renderLineChart($("#progress-chart"), points, { active: plan.status === "running", note }));
}

async function refreshPlans() {
  if (!state.region) return;
  let plans = [];
  try { plans = await api(`/v1/plans?region_id=${state.region.region_id}&limit=50`); } catch (error) { return; }
  plans = plans.filter((plan) => plan.kind !== "sweep" && plan.kind !== "documents");  // no assignments to open
  const box = $("#plans-list");
  box.hidden = plans.length === 0;
  const tbody = clear($("#plans-table tbody"));
  for (const plan of plans) {
    const p = plan.progress || {};
    const current = state.plan && state.plan.plan_id === plan.plan_id;
    tbody.append(h("tr", { class: current ? "current" : null },
      h("td", { text: fmt.datetime(plan.created_at) }),
      h("td", { text: STATUS[plan.status] || plan.status }),
      h("td", { class: "num", text: fmt.num(p.objective, 3) }),
      h("td", { class: "num", text: fmt.pct(p.gap) }),
      h("td", { class: "num", text: plan.status === "running" || plan.status === "queued" ? "…" : fmt.num(p.elapsed, 1) }),
      h("td", {}, current ? h("span", { class: "muted", text: "открыт" }) :
        h("button", { type: "button", onclick: () => { state.history = []; followPlan(plan.plan_id); },
                      "aria-label": `Открыть план от ${fmt.datetime(plan.created_at)}`, text: "Открыть" }))));
  }
}

// ------------------------------------------------------------------------------------------------
// charts
// ------------------------------------------------------------------------------------------------
function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((x) => x >= raw) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
  return { ticks, step };
}
function decimalsFor(step) {
  let d = 0;
  while (d < 6 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-6 * 10 ** d) d++;
  return d;
}

/** Objective and bound over time: step lines that move as the solver reports. */
function renderLineChart(node, points, opts) {
  const W = Math.min(1100, widthOf(node, 760)), H = 260, L = 64, R = 150, T = 14, B = 34;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", class: "line-chart",
                         "aria-label": "График: целевая функция и граница по времени", "data-points": points.length });
  clear(node).append(svg);
  if (opts.note) node.append(h("p", { class: "hint", text: opts.note }));
  if (!points.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted", text: "Ждём первых результатов решателя…" }));
    return;
  }
  const values = points.flatMap((p) => [p.objective, p.bound]).filter((v) => v != null && isFinite(v));
  let lo = Math.min(...values), hi = Math.max(...values);
  const pad = Math.max((hi - lo) * 0.08, Math.abs(hi) * 0.01, 0.01);
  lo -= pad; hi += pad;
  const tmax = Math.max(1, points[points.length - 1].t * 1.04);
  const x = (t) => L + (t / tmax) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const yt = niceTicks(lo, hi, 5), xt = niceTicks(0, tmax, 8);
  const grid = s("g", { class: "grid" }), axis = s("g", { class: "axis" });
  for (const v of yt.ticks) {
    grid.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    axis.append(s("text", { class: "tick", x: L - 6, y: y(v) + 4, "text-anchor": "end", text: fmt.num(v, decimalsFor(yt.step)) }));
  }
  for (const v of xt.ticks) {
    axis.append(s("line", { x1: x(v), x2: x(v), y1: H - B, y2: H - B + 4 }));
    axis.append(s("text", { class: "tick", x: x(v), y: H - B + 16, "text-anchor": "middle", text: fmt.num(v, decimalsFor(xt.step)) }));
  }
  axis.append(s("line", { x1: L, x2: W - R, y1: H - B, y2: H - B }), s("line", { x1: L, x2: L, y1: T, y2: H - B }));
  axis.append(s("text", { class: "tick", x: (L + W - R) / 2, y: H - 3, "text-anchor": "middle", text: "время расчёта, с" }));
  svg.append(grid, axis);
  const series = [
    { key: "bound", color: "var(--bound)", dash: "6 4", label: "граница" },
    { key: "objective", color: "var(--objective)", dash: null, label: "целевая функция" },
  ];
  for (const ser of series) {
    const pts = points.filter((p) => p[ser.key] != null);
    if (!pts.length) continue;
    let d = "";
    pts.forEach((p, i) => {
      d += i === 0 ? `M${x(p.t).toFixed(1)},${y(p[ser.key]).toFixed(1)}`
                   : `H${x(p.t).toFixed(1)}V${y(p[ser.key]).toFixed(1)}`;
    });
    const last = pts[pts.length - 1];
    if (opts.active) d += `H${(W - R).toFixed(1)}`;
    svg.append(s("path", { d, fill: "none", stroke: ser.color, "stroke-width": 2.5, "stroke-dasharray": ser.dash, class: "series-" + ser.key }));
    pts.forEach((p, i) => {
      const prev = pts[i - 1], next = pts[i + 1];
      if (prev && next && prev[ser.key] === p[ser.key]) return;  // a dot where the value changes, and at the ends
      svg.append(s("circle", { cx: x(p.t), cy: y(p[ser.key]), r: 3, fill: ser.color },
        title(`${ser.label}: ${fmt.num(p[ser.key], 3)} на ${fmt.num(p.t, 1)} с`)));
    });
    const ly = y(last[ser.key]);
    const other = ser.key === "bound" ? last.objective : last.bound;
    const up = ser.key === "bound" || other == null || y(other) > ly;
    const ty = up ? ly - 22 : ly + 14;
    svg.append(s("text", { x: W - R + 8, y: Math.max(12, Math.min(H - B - 8, ty)), style: `fill:${ser.color}`, "font-weight": 600 },
      s("tspan", { x: W - R + 8, text: ser.label }), s("tspan", { x: W - R + 8, dy: 15, text: fmt.num(last[ser.key], 3) })));
  }
}

/** Horizontal bars: each row a value of a total (drawn as a track), with its own text at the right. */
function renderBars(node, rows, opts = {}) {
  const W = widthOf(node, opts.width || 600);
  const rowH = opts.rowHeight || 24, T = 4, GAP = 10;
  const tops = [];
  rows.reduce((y, r) => { tops.push(y); return y + rowH + (r.gapAfter ? GAP : 0); }, T);
  const H = (tops.length ? tops[tops.length - 1] + rowH : T) + 4;
  let labelW = Math.min(W * 0.42, Math.max(40, ...rows.map((r) => textWidth(r.label))) + 14);
  const textW = Math.min(W * 0.4, Math.max(40, ...rows.map((r) => textWidth(r.text))) + 10);
  if (W - labelW - textW < 90) labelW = Math.max(60, W - textW - 90);
  const barW = Math.max(30, W - labelW - textW - 8);
  const common = opts.scale === "common" ? Math.max(1e-9, ...rows.filter((r) => !r.own).map((r) => r.total || 0)) : null;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": opts.label || "" });
  rows.forEach((r, i) => {
    const y0 = tops[i];
    const scale = (!r.own && common) || Math.max(1e-9, r.total || 0, r.value || 0);
    const trackW = ((r.total || 0) / scale) * barW;
    const valueW = Math.min(barW, ((r.value || 0) / scale) * barW);
    const over = r.total != null && r.value > r.total + 1e-9;
    const g = s("g", { class: "bar-row", dataset: r.data || {} });
    g.append(title(r.tooltip || `${r.label}: ${r.text}`));
    g.append(s("text", { x: labelW - 8, y: y0 + rowH / 2 + 4, "text-anchor": "end", text: fit(r.label, labelW - 10) }));
    g.append(s("rect", { x: labelW, y: y0 + 4, width: Math.max(0, trackW), height: rowH - 8, fill: "var(--need)", rx: 3 }));
    g.append(s("rect", { x: labelW, y: y0 + 4, width: Math.max(0, valueW), height: rowH - 8, rx: 3,
                         fill: over ? "var(--warn)" : r.color || "var(--covered)" }));
    g.append(s("text", { x: labelW + barW + 8, y: y0 + rowH / 2 + 4, class: "bar-text", text: r.text }));
    svg.append(g);
  });
  clear(node).append(svg);
}
function clip(text, n) { text = String(text || ""); return text.length > n ? text.slice(0, n - 1) + "…" : text; }

function heat(value, max) {
  const k = max > 0 ? Math.min(1, value / max) : 0;
  const light = 97 - k * 55;
  return { fill: `hsl(8, ${Math.round(30 + 45 * k)}%, ${light.toFixed(0)}%)`, dark: light < 62 };
}

function renderHeatmap(node, profiles, competencies) {
  const comps = competencies.filter((c) => profiles.some((p) => (p.mean_deficit || {})[c.competency_id] != null));
  const avail = widthOf(node, 1000) - 4;
  const sizeText = (p) => `${fmt.int(p.size)} пед.`;
  const labelW = Math.min(360, Math.max(...profiles.map((p) => textWidth(p.name, 12, 600) + textWidth("  " + sizeText(p)))) + 16);
  const heads = comps.map((c) => fit(c.short_name || c.name, 130, 11.5));
  const headW = Math.max(20, ...heads.map((t) => textWidth(t, 11.5)));
  const right = headW * 0.71 + 6;
  const cellW = Math.max(38, Math.min(70, (avail - labelW - right) / Math.max(1, comps.length)));
  const cellH = 30, top = headW * 0.71 + 18;
  const W = Math.ceil(labelW + comps.length * cellW + right), H = Math.ceil(top + profiles.length * cellH + 8);
  const max = Math.max(1e-9, ...profiles.flatMap((p) => comps.map((c) => (p.mean_deficit || {})[c.competency_id] || 0)));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", class: "heatmap",
                         "aria-label": "Тепловая карта профилей дефицитов" });
  comps.forEach((c, j) => {
    const x = labelW + j * cellW + cellW / 2;
    svg.append(s("text", { x, y: top - 8, transform: `rotate(-45 ${x} ${top - 8})`, "font-size": 11.5, text: heads[j] },
      title(c.name)));
  });
  profiles.forEach((p, i) => {
    const y = top + i * cellH;
    const g = s("g", { class: "heat-row", dataset: { cluster: p.cluster } });
    const nameW = labelW - 12 - textWidth("  " + sizeText(p));
    g.append(s("text", { x: labelW - 8, y: y + cellH / 2 + 4, "text-anchor": "end" },
      s("tspan", { "font-weight": 600, text: fit(p.name, nameW, 12, 600) }), s("tspan", { style: "fill:#5b6675", text: "  " + sizeText(p) }),
      title(`${p.name}: ${fmt.int(p.size)} педагогов`)));
    comps.forEach((c, j) => {
      const v = (p.mean_deficit || {})[c.competency_id] || 0;
      const color = heat(v, max);
      const cell = s("g", { class: "heat-cell", dataset: { competency: c.competency_id, value: v } },
        s("rect", { x: labelW + j * cellW + 1, y: y + 1, width: cellW - 2, height: cellH - 2, fill: color.fill, rx: 2 }),
        s("text", { x: labelW + j * cellW + cellW / 2, y: y + cellH / 2 + 4, "text-anchor": "middle", "font-size": 11,
                    style: `fill:${color.dark ? "#fff" : "#1c2430"}`, text: v >= 0.005 ? fmt.num(v, 2) : "·" }),
        title(`${p.name} · ${c.name}: средний дефицит ${fmt.num(v, 3)}`));
      g.append(cell);
    });
    svg.append(g);
  });
  clear(node).append(svg);
  node.append(h("p", { class: "hint", text: "Число в клетке — средний дефицит группы по компетенции: 0 — дефицита нет, 1 — балл 0 при пороге (с учётом приоритета школ с низкими результатами). Профили названы по самым выраженным дефицитам." }));
}

/** The region's municipalities from their coordinates, roads, and the plan's trips as lines. */
const MAP_KINDS = { internship: true, program: false, mentor: false };

function renderMap(node, map, munStats, trips) {
  const muns = map.municipalities.filter((m) => m.lat != null && m.lon != null);
  const W = Math.min(900, widthOf(node, 640)), P = 40;
  if (!muns.length) { clear(node).append(h("p", { class: "muted", text: "У муниципалитетов нет координат." })); return; }
  const lat0 = muns.reduce((a, m) => a + m.lat, 0) / muns.length;
  const kx = Math.cos((lat0 * Math.PI) / 180);
  const xs = muns.map((m) => m.lon * kx), ys = muns.map((m) => -m.lat);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const aspect = (maxY - minY + 1e-9) / (maxX - minX + 1e-9);
  const H = Math.round(Math.max(0.55, Math.min(1.0, aspect)) * W);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", class: "map",
                         "aria-label": `Карта: муниципалитетов ${muns.length}, поездки педагогов линиями` });
  clear(node).append(svg);
  const span = Math.max(maxX - minX, (maxY - minY) * (W - 2 * P) / (H - 2 * P), 1e-6);
  const scale = (W - 2 * P) / span;
  const offX = (W - (maxX - minX) * scale) / 2, offY = (H - (maxY - minY) * scale) / 2;
  const pos = {};
  muns.forEach((m, i) => { pos[m.municipality_id] = [offX + (xs[i] - minX) * scale, offY + (ys[i] - minY) * scale]; });
  const stats = Object.fromEntries((munStats || []).map((m) => [m.municipality_id, m]));
  const roads = s("g", { class: "roads" });
  for (const r of map.roads || []) {
    if (!pos[r.from] || !pos[r.to]) continue;
    roads.append(s("line", { x1: pos[r.from][0], y1: pos[r.from][1], x2: pos[r.to][0], y2: pos[r.to][1],
                             stroke: "#c9d1da", "stroke-width": 1 }, title(`дорога: ${fmt.int(r.minutes)} мин`)));
  }
  svg.append(roads);
  const lines = s("g", { class: "trips" });
  const local = {};
  for (const t of trips) if (t.from === t.to) local[t.from] = (local[t.from] || []).concat(t);
  const shown = trips.filter((t) => t.from !== t.to && MAP_KINDS[t.kind] && pos[t.from] && pos[t.to]);
  const maxCount = Math.max(1, ...shown.map((t) => t.count));
  const order = { program: 0, mentor: 1, internship: 2 };
  for (const t of shown.sort((a, b) => order[a.kind] - order[b.kind] || a.count - b.count)) {
    const [x1, y1] = pos[t.from], [x2, y2] = pos[t.to];
    const bend = t.kind === "internship" ? 0.12 : t.kind === "program" ? -0.12 : 0.25;
    const cx = (x1 + x2) / 2 - (y2 - y1) * bend, cy = (y1 + y2) / 2 + (x2 - x1) * bend;
    lines.append(s("path", {
      d: `M${x1.toFixed(1)},${y1.toFixed(1)} Q${cx.toFixed(1)},${cy.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`,
      fill: "none", stroke: `var(--${t.kind})`, "stroke-opacity": 0.75,
      "stroke-width": (1.2 + 6 * Math.sqrt(t.count / maxCount)).toFixed(1), "stroke-linecap": "round",
      class: "trip", dataset: { kind: t.kind, from: t.from, to: t.to, count: t.count } },
      title(`${KIND[t.kind]}: ${fmt.int(t.count)} поезд. из «${state.munNames[t.from] || t.from}» в «${state.munNames[t.to] || t.to}»` +
            (t.minutes != null ? `, ${fmt.int(t.minutes)} мин в пути` : ""))));
  }
  svg.append(lines);
  const maxTeachers = Math.max(1, ...map.municipalities.map((m) => m.teachers));
  const radius = (m) => (m.teachers > 0 ? 4 + 14 * Math.sqrt(m.teachers / maxTeachers) : 3.5);
  const dots = s("g", { class: "municipalities" });
  for (const m of muns) {
    const [x, y] = pos[m.municipality_id];
    const st = stats[m.municipality_id];
    const share = st && st.need_total > 0 ? st.need_covered / st.need_total : null;
    const fill = share == null ? "#ffffff" : `hsl(${Math.round(10 + 120 * share)}, 55%, 48%)`;
    const within = (local[m.municipality_id] || []).map((t) => `${KIND_LOWER[t.kind]}: ${fmt.int(t.count)}`).join(", ");
    dots.append(s("circle", { cx: x, cy: y, r: radius(m), fill, stroke: "#16324f", "stroke-width": 1.2, class: "mun",
                              dataset: { municipality: m.municipality_id } },
      title(`${m.name}: педагогов ${fmt.int(m.teachers)}, школ ${fmt.int(m.schools)}` +
            (share != null ? `; закрыто ${fmt.pct(share)} потребности` : "") +
            (within ? `; в своём муниципалитете — ${within}` : ""))));
  }
  svg.append(dots);
  // labels, biggest municipalities first, wherever they overlap no label and no other circle
  const boxes = muns.map((m) => { const [x, y] = pos[m.municipality_id], r = radius(m); return [x - r, y - r, x + r, y + r, m.municipality_id]; });
  const placed = [];
  const free = (b, own, overCircles) => b[0] >= 2 && b[2] <= W - 2 && b[1] >= 2 && b[3] <= H - 2 &&
    !placed.some((p) => b[0] < p[2] && b[2] > p[0] && b[1] < p[3] && b[3] > p[1]) &&
    (overCircles || !boxes.some((c) => c[4] !== own && b[0] < c[2] && b[2] > c[0] && b[1] < c[3] && b[3] > c[1]));
  const labels = s("g", { class: "labels" });
  const biggest = muns.slice().sort((a, b) => b.teachers - a.teachers);
  // the largest municipalities are labelled even over other circles (the label has a halo)
  const passes = [...biggest.slice(0, 5).map((m) => [m, true]), ...biggest.map((m) => [m, false])];
  const labelled = new Set();
  for (const [m, overCircles] of passes) {
    if (labelled.has(m.municipality_id)) continue;
    const [x, y] = pos[m.municipality_id], r = radius(m), w = textWidth(m.name, 12), hgt = 14;
    const options = [[x + r + 3, y - hgt / 2, "start"], [x - r - 3 - w, y - hgt / 2, "end"],
                     [x - w / 2, y - r - 2 - hgt, "middle"], [x - w / 2, y + r + 2, "middle"]];
    for (const [bx, by, anchor] of options) {
      const box = [bx, by, bx + w, by + hgt];
      if (!free(box, m.municipality_id, overCircles)) continue;
      placed.push(box);
      labelled.add(m.municipality_id);
      const tx = anchor === "start" ? bx : anchor === "end" ? bx + w : bx + w / 2;
      labels.append(s("text", { x: tx.toFixed(1), y: (by + 11).toFixed(1), "text-anchor": anchor, "font-size": 12, class: "map-label",
                                style: "paint-order:stroke;stroke:#f4f7fa;stroke-width:3px", text: m.name }));
      break;
    }
  }
  svg.append(labels);
}

function buildMapLegend(redraw) {
  const legend = clear($("#map-legend"));
  const toggle = (kind, text) => h("label", { class: "toggle" },
    h("input", { type: "checkbox", checked: MAP_KINDS[kind], dataset: { kind }, onchange: (e) => { MAP_KINDS[kind] = e.target.checked; redraw(); } }),
    h("span", { class: "swatch", style: `background:var(--${kind})` }), text);
  legend.append(
    h("span", { class: "legend-title", text: "Линии:" }),
    toggle("internship", "стажировки"), toggle("program", "очные программы"), toggle("mentor", "наставники (очно)"),
    h("span", { class: "legend-title", text: "Доля закрытой потребности:" }),
    h("span", {}, h("span", { class: "dot", style: "background:hsl(10,55%,48%)" }), "0 %"),
    h("span", {}, h("span", { class: "dot", style: "background:hsl(70,55%,48%)" }), "50 %"),
    h("span", {}, h("span", { class: "dot", style: "background:hsl(130,55%,48%)" }), "100 %"),
    h("span", {}, h("span", { class: "dot", style: "background:#fff;border:1px solid #16324f" }), "нет педагогов"),
    h("p", { class: "hint", text: "Кружок — муниципалитет (размер — число педагогов); линия — поездки педагогов из муниципалитета своей школы на очные мероприятия (толщина — их число). Названия, которым не хватило места, — во всплывающей подсказке кружка." }));
}

// ------------------------------------------------------------------------------------------------
// 3. Results
// ------------------------------------------------------------------------------------------------
function showResults(on) {
  $("#results-body").hidden = !on;
  $("#results-empty").hidden = on;
  if (!on) {
    for (const key of ["need", "capacity", "spending", "heatmap", "map", "teacher-needs"]) {
      const item = CHARTS.get(key);
      if (item && RESIZE) RESIZE.unobserve(item.node);
      CHARTS.delete(key);
    }
    $("#route").hidden = true;
    delete document.body.dataset.results;
  }
}

function compName(id) { const c = state.compNames[id]; return c ? c.name : id; }
function compShort(id) { const c = state.compNames[id]; return c ? c.short_name || c.name : id; }

async function loadResults(plan) {
  const summary = plan.summary;
  if (!summary) return;
  showResults(true);
  renderHeadline(plan, summary);
  renderDownloads(plan);
  if (!state.map) {
    try {
      state.map = await api(`/v1/regions/${plan.region_id}/map`);
      state.compNames = Object.fromEntries(state.map.competencies.map((c) => [c.competency_id, c]));
      state.munNames = Object.fromEntries(state.map.municipalities.map((m) => [m.municipality_id, m.name]));
    } catch (error) { /* ids instead of names */ }
  }
  chart("need", $("#need-chart"), () => renderNeed(summary));
  chart("capacity", $("#capacity-chart"), () => renderCapacity(summary));
  chart("spending", $("#spending-chart"), () => renderSpending(summary));
  $("#fairness-figure").hidden = !summary.fairness;
  if (summary.fairness) chart("fairness", $("#fairness-chart"), () => renderFairness(summary.fairness));
  const competencies = state.map ? state.map.competencies
    : Object.keys(summary.need_by_competency || {}).map((id) => ({ competency_id: id, name: id, short_name: id }));
  chart("heatmap", $("#heatmap"), () => renderHeatmap($("#heatmap"), summary.profiles || [], competencies));
  try {
    const mun = await api(`/v1/plans/${plan.plan_id}/municipalities`);
    renderMunicipalities(mun);
    if (state.map) {
      const draw = () => renderMap($("#map"), state.map, mun.municipalities, mun.trips);
      buildMapLegend(draw);
      chart("map", $("#map"), draw);
    }
  } catch (error) {
    clear($("#map")).append(h("p", { class: "status error", text: "Муниципалитеты не загружены: " + error.message }));
  }
  try {
    const clusters = await api(`/v1/plans/${plan.plan_id}/clusters`);
    state.teachers = clusters.teachers;
    $("#teacher-input").placeholder = state.teachers.length ? `например, ${state.teachers[0].teacher_id}` : "";
    updateTeacherOptions();
  } catch (error) { state.teachers = []; }
  document.body.dataset.results = plan.plan_id;
}

function renderHeadline(plan, sm) {
  const box = clear($("#headline"));
  const reached = sm.teachers_reached, withNeed = sm.teachers_with_need;
  box.append(
    figure("закрыто потребности", fmt.pct(sm.need_covered_share), `${fmt.num(sm.need_covered, 2)} из ${fmt.num(sm.need_total, 2)}`,
           { class: "figure good", dataset: { key: "need_covered_share", value: sm.need_covered_share } }),
    figure("педагогов с маршрутом", fmt.int(reached), `из ${fmt.int(sm.teachers)}; с дефицитами — ${fmt.int(withNeed)}`,
           { dataset: { key: "teachers_reached", value: reached } }),
    figure("назначений", fmt.int((sm.assignments.mentor || 0) + (sm.assignments.internship || 0) + (sm.assignments.program || 0)),
           `наставники ${fmt.int(sm.assignments.mentor)}, стажировки ${fmt.int(sm.assignments.internship)}, программы ${fmt.int(sm.assignments.program)}`,
           { dataset: { key: "assignments" } }),
    figure("стоимость плана", fmt.rub(sm.cost_total_rub), `сертификаты ${fmt.rub(sm.spending.voucher_rub)}, бюджеты ${fmt.rub(sm.spending.municipalities_rub)}`,
           { dataset: { key: "cost_total_rub", value: sm.cost_total_rub } }),
    figure("целевая функция", fmt.num(sm.objective, 3), `граница ${fmt.num(sm.bound, 3)}`, { dataset: { key: "objective", value: sm.objective } }),
    figure("разрыв до оптимума", fmt.pct(sm.gap), SOLVE_STATUS[sm.status] || sm.status,
           { class: "figure" + (sm.status === "OPTIMAL" ? " good" : ""), dataset: { key: "gap", value: sm.gap } }),
  );
}

function renderDownloads(plan) {
  const box = clear($("#downloads"));
  const base = `/v1/plans/${plan.plan_id}/files/`;
  const files = [["plan.xlsx", "План для Excel (plan.xlsx)"], ["assignments.csv", "Назначения (assignments.csv)"],
                 ["routes.csv", "Маршруты (routes.csv)"], ["clusters.csv", "Профили (clusters.csv)"], ["summary.json", "Сводка (summary.json)"]];
  for (const [name, label] of files) {
    const stem = name.replace(/\.[^.]+$/, ""), ext = name.split(".").pop();
    box.append(fileLink(base + name, `${stem}-${plan.plan_id}.${ext}`, label, { class: "button", dataset: { file: name } }));
  }
  box.append(decisionsForm(plan));
}

/** A download link that carries the API key when one is set (a plain link cannot send a header). */
function fileLink(url, name, label, attrs = {}) {
  return h("a", Object.assign({ href: url, download: name, text: label,
    onclick: (event) => { if (apiKey()) { event.preventDefault(); downloadWithKey(url, name); } } }, attrs));
}

/** plan.xlsx back with «закрепить» / «исключить» in «Решение» (sheet «Маршруты»): a new plan. */
function decisionsForm(plan) {
  const input = h("input", { type: "file", id: "decisions-file", accept: ".xlsx,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" });
  const status = h("div", { id: "decisions-status", class: "status", role: "status", "aria-live": "polite" });
  const list = h("ul", { id: "decisions-problems", class: "problems-list", hidden: true });
  const button = h("button", { type: "submit", id: "decisions-button", text: "Перепланировать с решениями" });
  const form = h("form", { id: "decisions-form", class: "decisions-form" },
    h("label", { for: "decisions-file", text: "Решения из Excel: plan.xlsx с отметками «закрепить» / «исключить» в столбце «Решение» листа «Маршруты»" }),
    input, button, status, list);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files && input.files[0];
    if (!file) { setStatus(status, "Выберите файл plan.xlsx.", "error"); return; }
    list.hidden = true;
    clear(list);
    setStatus(status, `Читаем решения из «${file.name}» и перепланируем…`, "busy");
    button.disabled = true;
    const body = new FormData();
    body.append("file", file, file.name);
    try {
      const answer = await api(`/v1/plans/${plan.plan_id}/decisions`, { method: "POST", body });
      setStatus(status, "Перепланирование с решениями поставлено в очередь.", "ok");
      await refreshPlans();
      await followPlan(answer.plan_id);  // the re-plan's progress, then its results
    } catch (error) {
      const problems = (error.body && error.body.problems) || [];
      setStatus(status, `Решения не приняты: ${(error.body && error.body.detail) || error.message}. План не изменён.`, "error");
      for (const p of problems.slice(0, 50)) {
        list.append(h("li", { dataset: { row: p.row ?? "", column: p.column ?? "" },
          text: `${p.row != null ? `строка ${p.row}, ` : ""}${p.column ? `столбец «${p.column}»: ` : ""}${p.message}${p.value ? ` («${p.value}»)` : ""}` }));
      }
      list.hidden = !problems.length;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

async function downloadWithKey(url, name) {
  try {
    const response = await fetch(url, { headers: headers() });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    download(await response.blob(), name);
  } catch (error) { showBanner("Файл не скачан: " + error.message); }
}

function renderNeed(sm) {
  const rows = Object.entries(sm.need_by_competency || {})
    .map(([id, v]) => ({ id, need: v.need, covered: v.covered }))
    .sort((a, b) => b.need - a.need)
    .map((r) => ({ label: compName(r.id), value: r.covered, total: r.need,
                   text: `${fmt.num(r.covered, 2)} из ${fmt.num(r.need, 2)} · ${r.need > 0 ? fmt.pct(r.covered / r.need) : "—"}`,
                   data: { competency: r.id, need: r.need, covered: r.covered } }));
  rows.unshift({ label: "Всего", value: sm.need_covered, total: sm.need_total, color: "var(--primary)", own: true, gapAfter: true,
                 text: `${fmt.num(sm.need_covered, 2)} из ${fmt.num(sm.need_total, 2)} · ${fmt.pct(sm.need_covered_share)}`,
                 data: { competency: "_total", need: sm.need_total, covered: sm.need_covered } });
  const box = $("#need-chart");
  renderBars(box, rows, { scale: "common", label: "Закрыто потребности: всего и по компетенциям" });
  box.append(h("p", { class: "hint", text: "Серая полоса — потребность (сумма дефицитов педагогов с учётом приоритета), зелёная — закрытая планом часть." }));
}

/** Who is left out: reached and covered shares of low-results vs other schools, due vs not due teachers, and
 *  municipalities from the least reached; the floor (min_reached_share) and its price when one was asked. */
function renderFairness(fair) {
  const share = (x) => (x == null ? "—" : fmt.pct(x));
  const pair = (label, g, key, gapAfter) => [
    { label: `${label}: охвачено`, value: g.reached, total: g.teachers_with_need, color: "var(--primary)",
      text: `${fmt.int(g.reached)} из ${fmt.int(g.teachers_with_need)} · ${share(g.reached_share)}`,
      data: { group: key, measure: "reached", share: g.reached_share ?? "" } },
    { label: `${label}: закрыто потребности`, value: g.need_covered, total: g.need_total, gapAfter,
      text: `${fmt.num(g.need_covered, 1)} из ${fmt.num(g.need_total, 1)} · ${share(g.need_covered_share)}`,
      data: { group: key, measure: "covered", share: g.need_covered_share ?? "" } },
  ];
  const rows = [
    ...pair("Школы с низкими результатами", fair.low_results, "low_results"),
    ...pair("Остальные школы", fair.other_schools, "other_schools", true),
    ...pair("Срок обучения истёк", fair.due, "due"),
    ...pair("Срок не истёк", fair.not_due, "not_due", true),
    ...(fair.municipalities || []).map((m) => ({
      label: state.munNames[m.municipality_id] || m.name || m.municipality_id, value: m.reached, total: m.teachers_with_need,
      text: `охват ${share(m.reached_share)} · закрыто ${share(m.need_covered_share)}`,
      tooltip: `${m.name}: охвачено ${fmt.int(m.reached)} из ${fmt.int(m.teachers_with_need)}; закрыто ${fmt.num(m.need_covered, 2)} из ${fmt.num(m.need_total, 2)}`,
      data: { municipality: m.municipality_id, share: m.reached_share } })),
  ];
  const box = $("#fairness-chart");
  renderBars(box, rows, { label: "Охват и закрытая потребность по группам и муниципалитетам" });
  const notes = [`Без назначений осталось ${fmt.int(fair.teachers_left_out)} из ${fmt.int(fair.teachers_with_need)} педагогов с дефицитами` +
                 " (список с причинами — лист left_out в plan.xlsx). Муниципалитеты — от наименее охваченного."];
  const floor = fair.floor;
  if (floor) {
    for (const [name, g] of Object.entries(floor.groups || {})) {
      const what = name === "due" ? "с истёкшим сроком" : "школ с низкими результатами";
      notes.push(`Нижняя граница охвата педагогов ${what}: ${fmt.pct(g.share)} (${fmt.int(g.target)} чел.) — ` +
                 (g.met ? `выполнена, охвачено ${fmt.int(g.reached)}` : `не достижима: охвачено ${fmt.int(g.reached)}, не хватает ${fmt.int(g.shortfall)}`));
    }
    notes.push(`Цена границы: целевая функция ниже на ${fmt.num(floor.price, 3)} (не больше ${fmt.num(floor.price_at_most, 3)}).`);
  }
  for (const text of notes) box.append(h("p", { class: "hint", text }));
}

function renderCapacity(sm) {
  const rows = ["mentor", "internship", "program"].map((k) => {
    const c = sm.capacity_use[k] || {};
    return { label: KIND_PLURAL[k], value: c.used, total: c.capacity, color: `var(--${k})`,
             text: `${fmt.int(c.used)} из ${fmt.int(c.capacity)} · ${fmt.share(c.used, c.capacity)}`,
             tooltip: `${KIND_PLURAL[k]}: занято ${fmt.int(c.used)} из ${fmt.int(c.capacity)}; заполнены полностью ${fmt.int(c.resources_full)} из ${fmt.int(c.resources)}`,
             data: { kind: k, used: c.used, capacity: c.capacity } };
  });
  renderBars($("#capacity-chart"), rows, { label: "Использование мест", labelWidth: 230, textWidth: 150, rowHeight: 28 });
  const notes = ["mentor", "internship", "program"].map((k) => {
    const c = sm.capacity_use[k] || {};
    return `${KIND_LOWER[k]}: заполнены полностью ${fmt.int(c.resources_full)} из ${fmt.int(c.resources)}`;
  });
  $("#capacity-chart").append(h("p", { class: "hint", text: notes.join("; ") + "." }));
}

function renderSpending(sm) {
  const sp = sm.spending;
  const rows = [];
  rows.push({ label: "Регион: стажировки и наставники", value: sp.municipalities_rub, total: sp.region_budget_rub, color: "var(--primary)",
              text: `${fmt.rub(sp.municipalities_rub)} из ${fmt.rub(sp.region_budget_rub)}`, data: { scope: "region", spent: sp.municipalities_rub, budget: sp.region_budget_rub } });
  const vouchers = state.region && state.region.region_id === state.plan.region_id ? state.region.vouchers_rub : null;
  rows.push({ label: "Сертификаты (программы ДПП)", value: sp.voucher_rub, total: vouchers, color: "var(--program)",
              text: vouchers != null ? `${fmt.rub(sp.voucher_rub)} из ${fmt.rub(vouchers)}` : fmt.rub(sp.voucher_rub),
              data: { scope: "vouchers", spent: sp.voucher_rub, budget: vouchers == null ? "" : vouchers } });
  // municipalities nearest to their budget first; those without a budget row of their own last
  const ratio = (m) => (m.budget_rub == null ? -1 : m.budget_rub > 0 ? m.spent_rub / m.budget_rub : m.spent_rub > 0 ? Infinity : 0);
  const muns = Object.entries(sp.by_municipality || {})
    .sort((a, b) => ratio(b[1]) - ratio(a[1]) || b[1].spent_rub - a[1].spent_rub);
  const FEW = 12;
  const shown = state.spendingAll || muns.length <= FEW + 2 ? muns : muns.slice(0, FEW);
  for (const [id, m] of shown) {
    rows.push({ label: state.munNames[id] || id, value: m.spent_rub, total: m.budget_rub == null ? m.spent_rub : m.budget_rub,
                text: m.budget_rub == null ? `${fmt.rub(m.spent_rub)} (без своего бюджета)` : `${fmt.rub(m.spent_rub)} из ${fmt.rub(m.budget_rub)}`,
                data: { scope: "municipality", municipality: id, spent: m.spent_rub, budget: m.budget_rub == null ? "" : m.budget_rub } });
  }
  const box = $("#spending-chart");
  renderBars(box, rows, { label: "Расходы и бюджеты" });
  if (shown.length < muns.length || state.spendingAll) {
    box.append(h("button", { type: "button", class: "more", "aria-expanded": String(!!state.spendingAll),
      onclick: () => { state.spendingAll = !state.spendingAll; renderSpending(sm); $("#spending-chart button.more").focus(); },
      text: state.spendingAll ? "Показать только ближайшие к пределу" : `Показать все муниципалитеты (${fmt.int(muns.length)})` }));
  }
  box.append(h("p", { class: "hint",
    text: "Стажировки и стипендии наставников оплачивает муниципалитет школы педагога (и в сумме — не больше бюджета региона); программы — сертификат педагога. Муниципалитеты — по близости расхода к их бюджету." }));
}

function renderMunicipalities(data) {
  const tbody = clear($("#mun-table tbody"));
  const rows = data.municipalities.filter((m) => m.teachers > 0 || m.spent_rub > 0 || m.budget_rub != null)
    .sort((a, b) => b.need_total - a.need_total || a.name.localeCompare(b.name, LOCALE));
  const share = (m) => (m.need_total > 0 ? fmt.pct(m.need_covered / m.need_total) : "—");
  for (const m of rows) {
    tbody.append(h("tr", { dataset: { municipality: m.municipality_id } },
      h("th", { scope: "row", text: m.name }),
      h("td", { class: "num", text: fmt.int(m.teachers) }),
      h("td", { class: "num", text: fmt.int(m.teachers_reached) }),
      h("td", { class: "num", text: fmt.num(m.need_total, 2) }),
      h("td", { class: "num", text: fmt.num(m.need_covered, 2) }),
      h("td", { class: "num", text: share(m) }),
      h("td", { class: "num", text: fmt.int(m.assignments.mentor) }),
      h("td", { class: "num", text: fmt.int(m.assignments.internship) }),
      h("td", { class: "num", text: fmt.int(m.assignments.program) }),
      h("td", { class: "num", text: fmt.rub(m.spent_rub) }),
      h("td", { class: "num", text: m.budget_rub == null ? "—" : fmt.rub(m.budget_rub) }),
      h("td", {}, m.teachers_reached > 0
        ? fileLink(`/v1/plans/${data.plan_id}/documents/municipalities/${encodeURIComponent(m.municipality_id)}`,
                   `documents-${m.municipality_id}.zip`, ".zip", { class: "doc-link", title: `Маршруты педагогов школ: ${m.name} (.zip)`, dataset: { docs: "municipality" } })
        : "—")));
  }
  const sum = (f) => data.municipalities.reduce((a, m) => a + (f(m) || 0), 0);
  clear($("#mun-table tfoot")).append(h("tr", {},
    h("td", { text: "Итого" }), h("td", { class: "num", text: fmt.int(sum((m) => m.teachers)) }),
    h("td", { class: "num", text: fmt.int(sum((m) => m.teachers_reached)) }),
    h("td", { class: "num", text: fmt.num(data.need_total, 2) }), h("td", { class: "num", text: fmt.num(data.need_covered, 2) }),
    h("td", { class: "num", text: data.need_total > 0 ? fmt.pct(data.need_covered / data.need_total) : "—" }),
    h("td", { class: "num", text: fmt.int(sum((m) => m.assignments.mentor)) }),
    h("td", { class: "num", text: fmt.int(sum((m) => m.assignments.internship)) }),
    h("td", { class: "num", text: fmt.int(sum((m) => m.assignments.program)) }),
    h("td", { class: "num", text: fmt.rub(sum((m) => m.spent_rub)) }), h("td", { class: "num", text: "" }), h("td", {})));
  // trips
  const name = (id) => state.munNames[id] || id;
  const away = data.trips.filter((t) => t.from !== t.to).sort((a, b) => b.count - a.count || (a.minutes || 0) - (b.minutes || 0));
  const trips = clear($("#trips-table tbody"));
  if (!away.length) trips.append(h("tr", {}, h("td", { colspan: 5, class: "muted", text: "Все очные мероприятия — в муниципалитете школы педагога." })));
  for (const t of away) {
    trips.append(h("tr", { dataset: { kind: t.kind } }, h("td", { text: name(t.from) }), h("td", { text: name(t.to) }),
      h("td", {}, h("span", { class: "kind " + t.kind, text: KIND[t.kind] })),
      h("td", { class: "num", text: fmt.int(t.count) }), h("td", { class: "num", text: t.minutes == null ? "—" : fmt.int(t.minutes) })));
  }
  const local = { mentor: 0, internship: 0, program: 0 };
  for (const t of data.trips) if (t.from === t.to) local[t.kind] += t.count;
  $("#local-trips").textContent = `В своём муниципалитете (без поездок): стажировки — ${fmt.int(local.internship)}, ` +
    `очные программы — ${fmt.int(local.program)}, наставники — ${fmt.int(local.mentor)}. Онлайн-программы и дистанционные наставники поездок не требуют.`;
}

// ---- a teacher's route -------------------------------------------------------------------------
function updateTeacherOptions() {
  const list = clear($("#teacher-options"));
  const q = $("#teacher-input").value.trim().toLowerCase();
  let n = 0;
  for (const t of state.teachers) {
    if (q && !t.teacher_id.toLowerCase().includes(q) && !(t.profile || "").toLowerCase().includes(q)) continue;
    list.append(h("option", { value: t.teacher_id, label: t.profile ? `профиль: ${t.profile}` : "" }));
    if (++n >= 40) break;
  }
}

async function showTeacher(event) {
  if (event) event.preventDefault();
  const id = $("#teacher-input").value.trim();
  const status = $("#teacher-status");
  if (!id || !state.plan) { setStatus(status, "Введите код педагога.", "error"); return; }
  setStatus(status, `Загружаем маршрут ${id}…`, "busy");
  try {
    const [route, teacher] = await Promise.all([
      api(`/v1/plans/${state.plan.plan_id}/routes/${encodeURIComponent(id)}`),
      api(`/v1/plans/${state.plan.plan_id}/teachers/${encodeURIComponent(id)}`),
    ]);
    renderRoute(route, teacher);
    setStatus(status, "", "");
  } catch (error) {
    $("#route").hidden = true;
    setStatus(status, error.status === 404 ? `Педагог «${id}» не найден в этом регионе.` : "Маршрут не загружен: " + error.message, "error");
  }
}

function fundedBy(value) {
  if (value === "voucher") return "из сертификата";
  if (value && value.startsWith("municipality:")) { const id = value.slice(13); return `из бюджета: ${state.munNames[id] || id}`; }
  return value || "";
}

function renderRoute(route, teacher) {
  $("#route").hidden = false;
  const head = clear($("#route-head"));
  head.dataset.teacher = route.teacher_id;
  head.append(
    h("span", { class: "who", text: `${route.teacher_id}${teacher.role === "manager" ? " (руководитель)" : ""}` }),
    h("span", { text: `${teacher.school}, ${teacher.municipality}${teacher.low_results ? " · школа с низкими результатами" : ""}` }),
    route.profile ? h("span", { text: `профиль: ${route.profile}` }) : null,
    h("span", { class: "route-need", dataset: { needTotal: route.need_total ?? teacher.need_total, needCovered: route.need_covered ?? 0 },
                text: `потребность ${fmt.num(route.need_total ?? teacher.need_total, 3)} → после маршрута ${fmt.num(route.need_after ?? teacher.need_total, 3)}` +
                      ` (закрыто ${fmt.share(route.need_covered ?? 0, route.need_total ?? teacher.need_total)})` }),
    h("span", { class: "muted", text: `сертификат ${fmt.rub(teacher.voucher_rub)} · не больше ${fmt.int(teacher.max_hours)} ч` }));
  if (route.steps.length) {
    const docs = `/v1/plans/${route.plan_id}/documents`;
    const id = encodeURIComponent(route.teacher_id);
    head.append(h("span", { class: "route-docs" }, "документы: ",
      fileLink(`${docs}/teachers/${id}`, `IOM_${route.teacher_id}.docx`, "маршрут (.docx)", { dataset: { docs: "docx" } }), " · ",
      fileLink(`${docs}/teachers/${id}?format=pdf`, `IOM_${route.teacher_id}.pdf`, "маршрут (.pdf)", { dataset: { docs: "pdf" } }), " · ",
      fileLink(`${docs}/schools/${encodeURIComponent(teacher.school_id)}`, `documents-${teacher.school_id}.zip`,
               "пакет школы (.zip)", { dataset: { docs: "school" } })));
  }
  const timeline = clear($("#timeline"));
  const period = state.map ? state.map.period : null;
  if (!route.steps.length) {
    timeline.append(h("p", { class: "empty-route", text: teacher.need_total > 0
      ? "Маршрут пуст: в пределах правил и бюджетов для этого педагога не нашлось подходящих мероприятий."
      : "Маршрут пуст: у педагога нет дефицитов ниже порога." }));
  } else {
    const start = Date.parse((period ? period[0] : route.steps[0].start) + "T00:00:00Z");
    const end = Date.parse((period ? period[1] : route.steps[route.steps.length - 1].end) + "T00:00:00Z") + 86400000;
    const pos = (iso, extra = 0) => Math.max(0, Math.min(100, ((Date.parse(iso + "T00:00:00Z") + extra - start) / (end - start)) * 100));
    const axis = h("div", { class: "tl-axis", "aria-hidden": "true" });
    for (let d = new Date(start); d.getTime() < end; d.setUTCMonth(d.getUTCMonth() + 1, 1)) {
      const p = ((d.getTime() - start) / (end - start)) * 100;
      if (p < 97) axis.append(h("span", { style: `left:${Math.max(2, p).toFixed(2)}%`, text: MONTH.format(d) }));
    }
    timeline.append(axis);
    const list = h("ol", { class: "tl-steps", "aria-label": "Шаги маршрута по датам" });
    for (const step of route.steps) {
      const left = pos(step.start), right = pos(step.end, 86400000);
      list.append(h("li", { class: "tl-step", dataset: { kind: step.kind, resource: step.resource_id, step: step.step } },
        h("div", { class: "tl-track", "aria-hidden": "true" },
          h("div", { class: "tl-bar", style: `left:${left.toFixed(2)}%;width:${Math.max(0.8, right - left).toFixed(2)}%` })),
        h("div", { class: "tl-title" }, h("span", { class: "kind " + step.kind, text: KIND[step.kind] || step.kind }), `${step.step}. ${step.name}`),
        h("div", { class: "tl-meta" },
          `${fmt.date(step.start)} — ${fmt.date(step.end)} · ${step.resource_id} · `,
          h("span", { class: "tl-hours", text: `${fmt.num(step.hours, Number.isInteger(step.hours) ? 0 : 1)} ч` }), " · ",
          h("span", { class: "tl-cost", text: fmt.rub(step.cost_rub) }), ` ${fundedBy(step.funded_by)}`),
        h("div", { class: "tl-meta" }, "закрывает: ",
          step.addresses.length ? h("span", { class: "chips" }, step.addresses.map((c) => h("span", { class: "chip", title: compName(c), text: compShort(c) })))
                                : "—")));
    }
    timeline.append(list);
    const hours = route.steps.reduce((a, x) => a + x.hours, 0), cost = route.steps.reduce((a, x) => a + x.cost_rub, 0);
    timeline.append(h("p", { class: "hint route-total", text: `Итого: ${fmt.num(hours, 0)} ч из ${fmt.int(teacher.max_hours)}, ${fmt.rub(cost)}.` }));
  }
  const needs = teacher.competencies.filter((c) => c.need > 0).sort((a, b) => b.need - a.need);
  const box = $("#teacher-needs");
  if (!needs.length) { clear(box).append(h("p", { class: "muted", text: "Дефицитов ниже порога нет." })); return; }
  chart("teacher-needs", box, () => renderBars(box, needs.map((c) => ({
    label: c.name, value: c.covered, total: c.need,
    text: `${fmt.num(c.covered, 2)} из ${fmt.num(c.need, 2)}` + (c.score != null ? ` · балл ${fmt.int(c.score)}` : ""),
    data: { competency: c.competency_id, need: c.need, covered: c.covered } })),
    { scale: "common", width: 520, label: "Потребность педагога по компетенциям" }));
}

// ------------------------------------------------------------------------------------------------
// 4. Nation: regions tied by federal seats and money (docs/nation.md)
// ------------------------------------------------------------------------------------------------
// the region's parameters, applied in every region of the nation; the time limit is the whole nation's
const NATION_TIME_LIMIT_S = 120;
const NATION_PARAMS = PARAMS.map((p) => (p.key !== "time_limit_s" ? p : Object.assign({}, p, {
  label: "Время расчёта страны, секунд", def: NATION_TIME_LIMIT_S,
  hint: "На весь расчёт страны: все регионы и раунды федеральных цен, от постановки в очередь до готовых файлов." })));
const NATION_FORM = new ParamsForm({ params: NATION_PARAMS, prefix: "nation-", box: "nation-params", refs: "nation-",
                                     problems: "nation-plan-problems", regional: true });
const PRICING_STATUS = { OPTIMAL: "доказано (OPTIMAL)", FEASIBLE: "без доказательства (FEASIBLE)" };
const NATION_FILES = [["plan.xlsx", "plan.xlsx"], ["assignments.csv", "назначения"], ["routes.csv", "маршруты"],
                      ["clusters.csv", "профили"], ["summary.json", "сводка"]];

async function uploadNation(event) {
  event.preventDefault();
  await uploadFile({ input: $("#nation-file"), button: $("#nation-upload-button"), status: $("#nation-upload-status"),
                     url: "/v1/nations", problems: NATION_PROBLEMS, what: "Набор страны", onAccepted: async (nation) => {
                       await refreshNationList(nation.nation_id);
                       await openNation(nation);
                     } });
}

async function refreshNationList(selected) {
  await fillPicker("nation", "/v1/nations?limit=100", {
    id: "nation_id", choose: "— выберите страну —", none: "— страны не загружены —", loaded: "Загружено стран",
    label: (n) => `${n.name} · регионов ${fmt.int(n.regions)} · ${fmt.int(n.teachers)} пед. · ${fmt.datetime(n.created_at)}` }, selected);
}

function regionName(regionId) {
  const region = state.nation && state.nation.region_list.find((r) => r.region_id === regionId);
  return region ? region.name : "";
}

async function openNation(nation) {
  stopPolling("nation");
  state.nation = nation;
  state.nationPlan = null;
  $("#nation-info").hidden = false;
  $("#nation-name").textContent = nation.name;
  $("#nation-meta").textContent = `файл ${nation.filename} · загружен ${fmt.datetime(nation.created_at)} · планов: ${fmt.int(nation.plans)}`;
  clear($("#nation-figures")).append(
    figure("регионов", fmt.int(nation.regions), null, { dataset: { key: "regions" } }),
    figure("педагогов", fmt.int(nation.teachers), null, { dataset: { key: "teachers" } }),
    figure("школ", fmt.int(nation.schools), null, { dataset: { key: "schools" } }),
    figure("федеральных программ", fmt.int(nation.federal_programs), `сессий: ${fmt.int(nation.federal_sessions)}`,
           { dataset: { key: "federal_programs" } }),
    figure("федеральных мест", fmt.int(nation.federal_seats), "на всех сессиях", { dataset: { key: "federal_seats" } }),
    figure("федеральный бюджет", fmt.rub(nation.federal_budget_rub), null, { dataset: { key: "federal_budget_rub" } }));
  $("#nation-progress").hidden = true;
  $("#nation-results").hidden = true;
  NATION_FORM.showProblems(null);
  delete document.body.dataset.nationResults;
  setHash();
  if (nation.plans > 0) {  // the newest plan of this nation, as the region's section opens its own
    try {
      const plans = (await api("/v1/plans?limit=100")).filter((plan) => plan.nation_id === nation.nation_id);
      if (plans.length) await followNationPlan(plans[0].plan_id);
    } catch (error) { /* no plan shown */ }
  }
}

async function startNationPlan(event) {
  event.preventDefault();
  if (!state.nation) return;
  const { params, problems } = NATION_FORM.read();
  if (problems.length) { NATION_FORM.showProblems({ detail: "Ошибки в параметрах плана", problems }); return; }
  NATION_FORM.showProblems(null);
  $("#nation-start-button").disabled = true;
  try {
    const created = await api(`/v1/nations/${state.nation.nation_id}/plans`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ params }) });
    await followNationPlan(created.plan_id);
  } catch (error) {
    NATION_FORM.showProblems(error.body && error.body.problems ? error.body : { detail: error.message, problems: [] });
    $("#nation-start-button").disabled = false;
  }
}

async function cancelNationPlan() {
  if (!state.nationPlan) return;
  $("#nation-cancel-button").disabled = true;
  try {
    const plan = await cancelJob(state.nationPlan.plan_id);
    stopPolling("nation");
    onNationPlan(plan);
  } catch (error) {
    setStatus($("#nation-plan-status"), "Не удалось отменить: " + error.message, "error");
  }
}

async function followNationPlan(planId) {
  stopPolling("nation");
  $("#nation-results").hidden = true;
  delete document.body.dataset.nationResults;
  const plan = await api(`/v1/plans/${planId}`);
  if (plan.params) NATION_FORM.fill(plan.params);  // the form shows what the plan was made with
  onNationPlan(plan);
}

function onNationPlan(plan) {
  state.nationPlan = plan;
  setHash();
  const active = plan.status === "queued" || plan.status === "running";
  $("#nation-progress").hidden = false;
  $("#nation-start-button").disabled = active;
  $("#nation-cancel-button").disabled = !active;
  renderNationProgress(plan);
  if (active) {
    pollPlan("nation", plan.plan_id, (next) => {
      if (state.nationPlan && state.nationPlan.plan_id === plan.plan_id) onNationPlan(next);
    }, $("#nation-plan-status"));
  } else if (plan.status === "done") {
    loadNationResults(plan);
  } else if (plan.status === "failed" && plan.error) {
    NATION_FORM.showProblems(plan.error);
  }
}

function renderNationProgress(plan) {
  const p = plan.progress || {};
  const summary = plan.summary || {};
  const limit = (plan.params && plan.params.time_limit_s) || NATION_TIME_LIMIT_S;
  const node = $("#nation-plan-status");
  const kind = plan.status === "done" ? "ok" : plan.status === "failed" ? "error" : plan.status === "cancelled" ? "" : "busy";
  let text = `План страны: ${STATUS[plan.status] || plan.status}`;
  if (plan.status === "done" && summary.status) text += ` · ${SOLVE_STATUS[summary.status] || summary.status}`;
  if (plan.status === "cancelled") text += " · лучший найденный план не сохранён";
  setStatus(node, text, kind);
  node.dataset.status = plan.status;
  // the API counts the rounds done; while one runs, the page names the one under way
  const rounds = Array.isArray(summary.rounds) ? summary.rounds.length : p.round;
  clear($("#nation-progress-figures")).append(...progressFigures(plan, limit),
    plan.status === "running"
      ? figure("раунд", fmt.int((p.round || 0) + 1), "федеральных цен: идёт", { dataset: { key: "round", value: p.round ?? "" } })
      : figure("раундов", fmt.int(rounds), plan.status === "queued" ? "ждёт свободного решателя" : "цен и распределения мест",
               { dataset: { key: "round", value: rounds ?? "" } }));
  const share = plan.status === "done" ? 1 : Math.min(1, (p.elapsed || 0) / limit);
  $("#nation-timebar-fill").style.width = (share * 100).toFixed(1) + "%";
  // each region of the nation, in regions.csv's order: how often it was priced, and its last pricing
  const priced = Object.fromEntries((p.regions || []).map((r) => [r.region_id, r]));
  const tbody = clear($("#nation-progress-table tbody"));
  for (const region of (state.nation && state.nation.region_list) || []) {
    const r = priced[region.region_id] || {};
    tbody.append(h("tr", { dataset: { region: region.region_id, rounds: r.rounds ?? "", status: r.status || "" } },
      h("th", { scope: "row" }, h("code", { text: region.region_id }), " ", region.name),
      h("td", { class: "num", text: fmt.int(region.teachers) }),
      h("td", { class: "num", text: fmt.int(r.rounds || 0) }),
      h("td", { text: r.status ? PRICING_STATUS[r.status] || r.status : "ещё не оценён" })));
  }
}

async function loadNationResults(plan) {
  const summary = plan.summary;
  if (!summary) return;
  const federal = summary.federal || {};
  const sessions = federal.sessions || [];
  const budget = federal.budget || {};
  const seats = sessions.reduce((a, x) => a + x.seats, 0), used = sessions.reduce((a, x) => a + x.used, 0);
  clear($("#nation-headline")).append(
    figure("целевая функция", fmt.num(summary.objective, 3), `граница ${fmt.num(summary.bound, 3)}`,
           { dataset: { key: "objective", value: summary.objective } }),
    figure("доказанная граница", fmt.num(summary.bound, 3), "лучше не бывает", { dataset: { key: "bound", value: summary.bound } }),
    figure("разрыв до оптимума", fmt.pct(summary.gap), SOLVE_STATUS[summary.status] || summary.status,
           { class: "figure" + (summary.status === "OPTIMAL" ? " good" : ""), dataset: { key: "gap", value: summary.gap } }),
    figure("закрыто потребности", fmt.share(summary.need_covered, summary.need_total),
           `${fmt.num(summary.need_covered, 2)} из ${fmt.num(summary.need_total, 2)}`, { dataset: { key: "need_covered" } }),
    figure("педагогов с маршрутом", fmt.int(summary.teachers_reached), `из ${fmt.int(summary.teachers)}`,
           { dataset: { key: "teachers_reached", value: summary.teachers_reached } }),
    figure("федеральных мест занято", `${fmt.int(used)} из ${fmt.int(seats)}`, `сессий: ${fmt.int(sessions.length)}`,
           { dataset: { key: "federal_seats", used, seats } }),
    figure("федеральный бюджет", fmt.rub(budget.used_rub), `израсходовано из ${fmt.rub(budget.amount_rub)}`,
           { dataset: { key: "federal_budget", used: budget.used_rub, amount: budget.amount_rub } }));
  const base = `/v1/plans/${plan.plan_id}`;
  clear($("#nation-downloads")).append(
    fileLink(`${base}/nation.zip`, `nation-plan-${plan.plan_id}.zip`, "Весь план страны (nation.zip)",
             { class: "button", dataset: { file: "nation.zip" } }),
    fileLink(`${base}/summary`, `nation-summary-${plan.plan_id}.json`, "Сводка страны (summary.json)",
             { class: "button", dataset: { file: "summary.json" } }));
  const quotas = Object.fromEntries((federal.quotas || []).map((q) => [q.region_id, q]));
  const tbody = clear($("#nation-regions-table tbody"));
  for (const r of summary.regions || []) {
    const quota = quotas[r.region_id];
    const id = encodeURIComponent(r.region_id);
    const files = NATION_FILES.map(([name, label], i) => [i ? " · " : null,
      fileLink(`${base}/regions/${id}/files/${name}`, `${r.region_id}-${name}`, label,
               { dataset: { file: name }, title: `${r.region_id}: ${name}` })]);
    tbody.append(h("tr", { dataset: { region: r.region_id } },
      h("th", { scope: "row" }, h("code", { text: r.region_id }), " ", regionName(r.region_id)),
      h("td", { class: "num", text: fmt.num(r.objective, 3) }),
      h("td", { class: "num", text: fmt.num(r.need_total, 2) }),
      h("td", { class: "num", text: fmt.num(r.need_covered, 2) }),
      h("td", { class: "num", text: fmt.share(r.need_covered, r.need_total) }),
      h("td", { class: "num", text: fmt.int(r.teachers_reached) }),
      h("td", { class: "num", text: quota ? `${fmt.rub(quota.used_rub)} из ${fmt.rub(quota.amount_rub)}` : "—" }),
      h("td", { class: "files" }, files)));
  }
  const sessionRows = clear($("#nation-sessions-table tbody"));
  for (const x of sessions) {
    sessionRows.append(h("tr", { dataset: { session: x.session_id } }, h("td", {}, h("code", { text: x.session_id })),
      h("td", { class: "num", text: fmt.int(x.seats) }), h("td", { class: "num", text: fmt.int(x.used) })));
  }
  $("#nation-results").hidden = false;
  document.body.dataset.nationResults = plan.plan_id;
}

// ------------------------------------------------------------------------------------------------
// start
// ------------------------------------------------------------------------------------------------
async function init() {
  FONT = getComputedStyle(document.body).fontFamily || FONT;
  REGION_FORM.build();
  NATION_FORM.build();
  $("#upload-form").addEventListener("submit", uploadBundle);
  REGION_PROBLEMS.build("Ошибки в наборе данных", "Список ошибок, прокручивается");
  NATION_PROBLEMS.build("Ошибки в наборе данных страны", "Список ошибок страны, прокручивается");
  $("#nation-upload-form").addEventListener("submit", uploadNation);
  $("#nation-plan-form").addEventListener("submit", startNationPlan);
  $("#nation-cancel-button").addEventListener("click", cancelNationPlan);
  $("#nation-select").addEventListener("change", async (e) => {
    if (!e.target.value) return;
    try { await openNation(await api(`/v1/nations/${e.target.value}`)); } catch (error) { showBanner("Страна не открыта: " + error.message); }
  });
  $("#plan-form").addEventListener("submit", startPlan);
  $("#cancel-button").addEventListener("click", cancelPlan);
  $("#defaults-button").addEventListener("click", () => REGION_FORM.reset());
  $("#nation-defaults-button").addEventListener("click", () => NATION_FORM.reset());
  $("#teacher-form").addEventListener("submit", showTeacher);
  $("#teacher-input").addEventListener("input", updateTeacherOptions);
  $("#api-key").value = apiKey();
  $("#api-key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem("marshrut-api-key", $("#api-key").value.trim());
    $("#apikey-box").open = false;
    showBanner("");
    await refreshRegionList(state.region && state.region.region_id);
    await refreshNationList(state.nation && state.nation.nation_id);
  });
  $("#template-link").addEventListener("click", (event) => {
    if (apiKey()) { event.preventDefault(); downloadWithKey("/v1/template.xlsx", "marshrut-template.xlsx"); }
  });
  $("#region-select").addEventListener("change", async (e) => {
    if (!e.target.value) return;
    try { await openRegion(await api(`/v1/regions/${e.target.value}`)); } catch (error) { showBanner("Регион не открыт: " + error.message); }
  });
  const wanted = readHash();
  await refreshRegionList(wanted.region);
  if (wanted.region) {
    try { await openRegion(await api(`/v1/regions/${wanted.region}`)); } catch (error) { /* gone */ }
  }
  if (wanted.plan && state.region) {
    try {
      await followPlan(wanted.plan);
      if (state.plan && state.plan.params) REGION_FORM.fill(state.plan.params);
    } catch (error) { /* gone */ }
  }
  await refreshNationList(wanted.nation);
  if (wanted.nation) {
    try {
      await openNation(await api(`/v1/nations/${wanted.nation}`));
      if (wanted["nation-plan"]) await followNationPlan(wanted["nation-plan"]);
    } catch (error) { /* gone */ }
  }
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", init);
