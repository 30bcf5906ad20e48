--- The run report as one self-contained HTML page: inline CSS, inline SVG charts
-- (dicomgcs.report.svg), the rows as one compact JSON blob and a small inline script that pages,
-- sorts and filters them. Nothing is fetched at view time (a Content-Security-Policy forbids it).
-- Every text that comes from a user or a server is escaped; the script puts data into the page
-- with textContent only.
-- @module dicomgcs.report.html
local json = require "dicomgcs.json"
local svg = require "dicomgcs.report.svg"

local html = {}
local esc = svg.escape

local OUTCOMES = { "succeeded", "failed", "skipped", "conflict", "unknown" }
local OUTCOME_INDEX = {}
for i, o in ipairs(OUTCOMES) do OUTCOME_INDEX[o] = i - 1 end

local CSS = [[
:root{--ok:#2e7d32;--fail:#c62828;--skip:#607d8b;--pend:#ef9a00;--conf:#8e24aa;--unk:#9e9e9e;
 --ink:#1d2329;--mute:#5f6b76;--line:#dde3e8;--bg:#f6f8fa;--accent:#1565c0}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--ink);background:var(--bg)}
main{max-width:1120px;margin:0 auto;padding:16px}
section,header.top{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 16px}
h1{font-size:1.45rem;margin:0 0 4px;word-break:break-word}h2{font-size:1.15rem;margin:0 0 12px}
 h3{font-size:1.02rem;margin:16px 0 8px;word-break:break-word}
.badge{display:inline-block;padding:2px 10px;border-radius:99px;font-size:.8rem;font-weight:600;color:#fff;vertical-align:middle;margin-left:6px}
.badge.ok{background:var(--ok)}.badge.partial{background:var(--pend);color:#222}.badge.bad{background:var(--fail)}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:12px 0 0}
dl.meta dt{color:var(--mute)}dl.meta dd{margin:0;word-break:break-all}
pre.cmd{background:#0f1720;color:#e6edf3;padding:10px 12px;border-radius:6px;overflow-x:auto;
 white-space:pre-wrap;word-break:break-all;font-size:.85rem;margin:4px 0 0}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:10px;margin-bottom:12px}
.card{border:1px solid var(--line);border-left:5px solid var(--mute);border-radius:6px;padding:8px 12px}
.card .n{font-size:1.5rem;font-weight:650;font-variant-numeric:tabular-nums}.card .l{color:var(--mute);font-size:.85rem}
.card.succeeded{border-left-color:var(--ok)}.card.failed{border-left-color:var(--fail)}.card.skipped{border-left-color:var(--skip)}
.card.conflict{border-left-color:var(--conf)}.card.unknown{border-left-color:var(--unk)}.card.pending{border-left-color:var(--pend)}
 .card.bytes{border-left-color:var(--accent)}
.sum{margin:4px 0 10px;color:var(--mute)}.sum.good b{color:var(--ok)}.sum.bad b{color:var(--fail)}
svg.chart{display:block;width:100%;height:auto;font-size:12px}
svg.bar-chart{height:28px}
.track{fill:#eceff1}.part.succeeded{fill:var(--ok)}.part.failed{fill:var(--fail)}.part.skipped{fill:var(--skip)}
 .part.conflict{fill:var(--conf)}.part.unknown{fill:var(--unk)}.part.pending{fill:var(--pend)}
.grid line{stroke:#e6eaee}.tick{fill:var(--mute)}.axis{stroke:#9aa5af}.frame{fill:none;stroke:var(--line)}
 .empty{fill:var(--mute);font-size:14px}
polyline.series{fill:none;stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}
.series.succeeded{stroke:var(--ok)}.series.failed{stroke:var(--fail)}.series.pending{stroke:var(--pend)}.series.bytes{stroke:var(--accent)}
.dots.succeeded{fill:var(--ok)}.dots.failed{fill:var(--fail)}.dots.pending{fill:var(--pend)}.dots.bytes{fill:var(--accent)}
.marker line{stroke-width:1.5;stroke-dasharray:4 3}.marker-throttle line{stroke:#ef6c00}.marker-throttle path{fill:#ef6c00}
.marker-retry line{stroke:#6a1b9a}.marker-retry path{fill:#6a1b9a}.marker-restart line{stroke:#c62828}.marker-restart path{fill:#c62828}
.marker-event line{stroke:#546e7a}.marker-event path{fill:#546e7a}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:.85rem;color:var(--mute);margin:6px 0 0;padding:0;list-style:none}
.legend i{display:inline-block;width:14px;height:4px;border-radius:2px;vertical-align:middle;margin-right:5px}
.legend i.m{width:3px;height:12px}
.sw-succeeded{background:var(--ok)}.sw-failed{background:var(--fail)}.sw-skipped{background:var(--skip)}.sw-pending{background:var(--pend)}
 .sw-conflict{background:var(--conf)}.sw-unknown{background:var(--unk)}.sw-bytes{background:var(--accent)}
.sw-throttle{background:#ef6c00}.sw-retry{background:#6a1b9a}.sw-restart{background:#c62828}.sw-event{background:#546e7a}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f0f3f6;font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.file{word-break:break-all;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.82rem}
th button{font:inherit;border:0;background:none;padding:0;cursor:pointer;color:inherit}
th button::after{content:" \2195";color:#9aa5af}th[aria-sort=ascending] button::after{content:" \2191";color:var(--ink)}
 th[aria-sort=descending] button::after{content:" \2193";color:var(--ink)}
tr.group{cursor:pointer}tr.group:hover,tr.group.on{background:#e8f0fe}
.o-failed{color:var(--fail);font-weight:600}.o-succeeded{color:var(--ok)}.o-skipped{color:var(--skip)}.o-unknown{color:var(--unk)}
 .o-conflict{color:var(--conf)}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:0 0 10px}
.controls input,.controls select,.controls button,.pager button{
 font:inherit;padding:6px 10px;border:1px solid #b8c2cc;border-radius:6px;background:#fff}
.controls input{flex:1 1 220px;min-width:0}
.pager{display:flex;gap:8px;align-items:center;margin-top:10px;flex-wrap:wrap}
.muted{color:var(--mute)}.hidden{display:none}
a{color:var(--accent)}
footer{color:var(--mute);font-size:.85rem;text-align:center;padding:8px 0 24px}
@media (max-width:640px){main{padding:8px}section,header.top{padding:12px}dl.meta{grid-template-columns:1fr}dl.meta dt{margin-top:6px}
 h1{font-size:1.2rem}.chart-wrap{overflow-x:auto}.chart-wrap svg.line-chart{min-width:540px}.card .n{font-size:1.25rem}
 th,td{padding:5px 4px}td.reason{min-width:10em}}
@media print{body{background:#fff;font-size:11pt}main{max-width:none;padding:0}
 section,header.top{border:0;padding:0 0 8pt;margin:0 0 10pt;break-inside:avoid-page}
 .controls,.pager button,noscript{display:none}th button::after{content:none}pre.cmd{background:#fff;color:#000;border:1px solid #999}
 table{font-size:9pt}tr{break-inside:avoid}a{color:inherit;text-decoration:none}#files{break-inside:auto}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
]]

-- The page's script: reads the blob, filters, sorts and pages the rows; data only via textContent.
local JS = [==[
(function(){"use strict";
var D=JSON.parse(document.getElementById("report-data").textContent);
var O=D.outcomes,hasOp=D.operations.length>0,R=new Array(D.n),k=0,prev="",j,c;
// rows are [file, outcome, code, reason, operation] (indexes into the lists), decoded from runs of
// one folder and names that share a prefix with the name before; only rows not plainly succeeded
// are listed in `sparse`
var dirs=[];for(j=0;j<D.dpre.length;j++)dirs[j]=prev=prev.slice(0,D.dpre[j])+D.dsuf[j];
prev="";for(j=0;j<D.runs.length;j+=2){var dir=dirs[D.runs[j]];
 for(c=0;c<D.runs[j+1];c++,k++){prev=prev.slice(0,D.pre[k])+D.suf[k];R[k]=[dir+prev,0,0,0,0];}}
for(j=0;j<D.sparse.length;j+=5){var x=R[D.sparse[j]];x[1]=D.sparse[j+1];x[2]=D.sparse[j+2];x[3]=D.sparse[j+3];x[4]=D.sparse[j+4];}
var $=function(id){return document.getElementById(id);};
var st={q:"",o:D.problems>0?"problems":"all",reason:-1,sort:-1,desc:false,page:0,size:100},view=[];
function cell(r,c){switch(c){case 0:return r[0];case 1:return O[r[1]];case 2:return D.codes[r[2]];case 3:return D.reasons[r[3]];
 default:return hasOp?D.operations[r[4]]:"";}}
function apply(keepPage){
 var q=st.q.toLowerCase(),out=[],i,r;
 for(i=0;i<R.length;i++){r=R[i];var o=O[r[1]];
  if(st.o==="problems"?o==="succeeded":(st.o!=="all"&&o!==st.o))continue;
  if(st.reason>=0&&r[3]!==st.reason)continue;
  if(q&&(r[0]+"\u0001"+D.codes[r[2]]+"\u0001"+D.reasons[r[3]]+"\u0001"+o).toLowerCase().indexOf(q)<0)continue;
  out.push(r);}
 if(st.sort>=0){var c=st.sort,s=st.desc?-1:1;
  out.sort(function(a,b){var x=cell(a,c),y=cell(b,c);return x<y?-s:x>y?s:0;});}
 view=out;if(!keepPage)st.page=0;draw();}
function td(tr,text,cls){var e=document.createElement("td");e.textContent=text;if(cls)e.className=cls;tr.appendChild(e);}
function draw(){
 var tb=$("files-body"),size=st.size||view.length||1,pages=Math.max(1,Math.ceil(view.length/size));
 if(st.page>=pages)st.page=pages-1;
 var a=st.page*size,b=Math.min(view.length,a+size),f=document.createDocumentFragment();
 for(var i=a;i<b;i++){var r=view[i],tr=document.createElement("tr"),o=O[r[1]];
  td(tr,r[0],"file");td(tr,o,"o-"+o);td(tr,D.codes[r[2]],"mono");td(tr,D.reasons[r[3]],"reason");
  if(hasOp)td(tr,D.operations[r[4]]);f.appendChild(tr);}
 tb.textContent="";tb.appendChild(f);
 var n=function(x){return x.toLocaleString("en");};
 var of=view.length<R.length?" (filtered from "+n(R.length)+")":"";
 $("files-info").textContent=view.length?("rows "+n(a+1)+"\u2013"+n(b)+" of "+n(view.length)+of):"no rows match";
 $("files-empty").className=view.length?"hidden":"muted";
 $("page-prev").disabled=st.page<=0;$("page-next").disabled=st.page>=pages-1;
 $("page-no").textContent="page "+(st.page+1)+" of "+pages;}
var t;$("f-q").addEventListener("input",function(e){clearTimeout(t);t=setTimeout(function(){st.q=e.target.value;apply();},120);});
$("f-outcome").value=st.o;
$("f-outcome").addEventListener("change",function(e){st.o=e.target.value;apply();});
$("f-size").addEventListener("change",function(e){st.size=+e.target.value;draw();});
$("page-prev").addEventListener("click",function(){st.page--;draw();});
$("page-next").addEventListener("click",function(){st.page++;draw();});
var ths=document.querySelectorAll("#files th[data-col]");
Array.prototype.forEach.call(ths,function(th){th.querySelector("button").addEventListener("click",function(){
 var c=+th.getAttribute("data-col");if(st.sort===c)st.desc=!st.desc;else{st.sort=c;st.desc=false;}
 Array.prototype.forEach.call(ths,function(h){h.removeAttribute("aria-sort");});
 th.setAttribute("aria-sort",st.desc?"descending":"ascending");apply();});});
var groups=document.querySelectorAll("tr.group");
function pick(g){var idx=+g.getAttribute("data-reason");st.reason=st.reason===idx?-1:idx;
 Array.prototype.forEach.call(groups,function(x){x.classList.toggle("on",+x.getAttribute("data-reason")===st.reason);});
 $("f-reason").className=st.reason>=0?"":"hidden";$("f-reason-text").textContent=st.reason>=0?D.reasons[st.reason]:"";
 if(st.reason>=0&&st.o!=="all")st.o="all",$("f-outcome").value="all";apply();
 if(st.reason>=0)$("files").scrollIntoView();}
Array.prototype.forEach.call(groups,function(g){g.addEventListener("click",function(){pick(g);});
 g.addEventListener("keydown",function(e){if(e.key==="Enter"||e.key===" "){e.preventDefault();pick(g);}});});
$("f-reason-clear").addEventListener("click",function(){var g=document.querySelector("tr.group.on");if(g)pick(g);});
apply();
// how long the page took from navigation to laid out with its first rows (bench/report.sh reads it)
void document.body.offsetHeight;var de=document.documentElement;
de.setAttribute("data-ready-ms",String(Math.round(performance.now())));de.setAttribute("data-ready","1");
})();
]==]

local function utc(t)
  if not t then return "—" end
  return os.date("!%Y-%m-%d %H:%M:%S UTC", math.floor(t))
end

local function count(n) return svg.count(n or 0) end

local function bytes(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do n = n / 1024; i = i + 1 end
  -- whole bytes print without a fraction; axis ticks can be fractions of a byte per second
  return ((i == 1 and n == math.floor(n)) and "%.0f %s" or "%.1f %s"):format(n, units[i])
end

-- JSON that is safe inside <script>: no "<", ">" or "&" can end the element or open a comment.
local function script_json(v)
  return (json.encode(v):gsub("[<>&]", { ["<"] = "\\u003c", [">"] = "\\u003e", ["&"] = "\\u0026" }))
end

-- The length of the common prefix of two names, in ASCII bytes only (so that it counts the same
-- in Lua bytes and in JavaScript UTF-16 units).
local function common_prefix(a, b)
  local n, i = math.min(#a, #b), 1
  while i <= n do
    local x = a:byte(i)
    if x ~= b:byte(i) or x >= 0x80 then break end
    i = i + 1
  end
  return i - 1
end

-- Strings each written as its difference from the one before: `pre` characters kept, then `suf`.
local function front_coded(list)
  local pre, suf, prev = {}, {}, ""
  for i, s in ipairs(list) do
    local k = common_prefix(prev, s)
    pre[i], suf[i], prev = k, s:sub(k + 1), s
  end
  return json.array(pre), json.array(suf)
end

-- The rows, compact so that 100,000 of them stay a few MB and parse fast: every repeated string
-- stored once; files as runs of one folder (`runs` = folder, count, ...; folders front-coded in
-- `dpre`/`dsuf`) with names front-coded in `pre`/`suf` (see front_coded); outcome, code,
-- reason and operation only for the rows that are not plainly succeeded (`sparse`, 5 per row,
-- row numbers from 0). The page's script decodes it (see JS above).
local function blob(r)
  local dirs, codes, reasons, ops = {}, { "" }, { "" }, { "" }
  local di, ci, ri, oi = {}, { [""] = 0 }, { [""] = 0 }, { [""] = 0 }
  local function intern(list, index, s)
    local i = index[s]
    if not i then list[#list + 1] = s; i = #list - 1; index[s] = i end
    return i
  end
  for _, op in ipairs(r.operations or {}) do intern(ops, oi, op.key or op.name or "") end
  local runs, names, sparse, problems = {}, {}, {}, 0
  local last_dir
  for i, row in ipairs(r.rows or {}) do
    local input = tostring(row.input or "")
    local dir, name = input:match("^(.*/)([^/]*)$")
    if not dir then dir, name = "", input end
    local d = intern(dirs, di, dir)
    if d == last_dir then runs[#runs] = runs[#runs] + 1
    else runs[#runs + 1] = d; runs[#runs + 1] = 1; last_dir = d end
    names[i] = name
    local o = OUTCOME_INDEX[row.outcome] or OUTCOME_INDEX.unknown
    if o ~= 0 then problems = problems + 1 end
    local c = intern(codes, ci, row.code and tostring(row.code) or "")
    local why = intern(reasons, ri, row.reason and tostring(row.reason) or "")
    local op = intern(ops, oi, row.operation or "")
    if o ~= 0 or c ~= 0 or why ~= 0 or op ~= 0 then
      local n = #sparse
      sparse[n + 1], sparse[n + 2], sparse[n + 3], sparse[n + 4], sparse[n + 5] = i - 1, o, c, why, op
    end
  end
  if #ops == 1 then ops = {} end
  local pre, suf = front_coded(names)
  local dpre, dsuf = front_coded(dirs)
  return { dpre = dpre, dsuf = dsuf, codes = json.array(codes), reasons = json.array(reasons),
           operations = json.array(ops), outcomes = json.array(OUTCOMES), runs = json.array(runs),
           pre = json.array(pre), suf = json.array(suf), sparse = json.array(sparse), n = #(r.rows or {}),
           problems = problems }, ri
end

local function totals_of(r)
  local t = r.totals or {}
  return { matched = t.matched or 0, succeeded = t.succeeded or 0, failed = t.failed or 0,
           skipped = t.skipped or 0, conflict = t.conflicts or t.conflict or 0, unknown = t.unknown or 0,
           pending = t.pending or 0 }
end

local function totals_block(t, id, extra)
  local out = { ('<div class="cards" id="%s">'):format(esc(id)) }
  local function card(key, label, value)
    out[#out + 1] = ('<div class="card %s"><div class="n" data-total="%s">%s</div><div class="l">%s</div></div>'):format(
      key, key, count(value), label)
  end
  card("matched", "matched", t.matched)
  card("succeeded", "succeeded", t.succeeded)
  card("failed", "failed", t.failed)
  card("skipped", "skipped", t.skipped)
  if t.conflict > 0 then card("conflict", "conflicts", t.conflict) end
  if t.unknown > 0 then card("unknown", "no outcome", t.unknown) end
  if t.pending > 0 then card("pending", "pending", t.pending) end
  if extra then out[#out + 1] = extra end
  out[#out + 1] = "</div>"
  local sum = t.succeeded + t.failed + t.skipped + t.conflict
  local adds = sum + t.unknown + t.pending == t.matched and t.unknown == 0
  local terms = { count(t.succeeded) .. " succeeded", count(t.failed) .. " failed", count(t.skipped) .. " skipped" }
  if t.conflict > 0 then terms[#terms + 1] = count(t.conflict) .. " conflicts" end
  if t.unknown > 0 then terms[#terms + 1] = count(t.unknown) .. " without an outcome" end
  if t.pending > 0 then terms[#terms + 1] = count(t.pending) .. " pending" end
  out[#out + 1] = ('<p class="sum %s">%s matched %s %s <b>%s</b></p>'):format(adds and "good" or "bad", count(t.matched),
    adds and "=" or "≠", table.concat(terms, " + "), adds and "✓ adds up" or "✗ does not add up")
  local parts = {}
  for _, k in ipairs{ "succeeded", "failed", "skipped", "conflict", "unknown", "pending" } do
    parts[#parts + 1] = { label = k, value = t[k], class = k }
  end
  out[#out + 1] = svg.stacked_bar{ parts = parts, total = math.max(t.matched, sum + t.unknown + t.pending),
    title = "totals: " .. table.concat(terms, ", ") }
  local legend = { '<ul class="legend">' }
  for _, p in ipairs(parts) do
    if p.value > 0 then
      legend[#legend + 1] = ('<li><i class="sw-%s"></i>%s %s</li>'):format(p.class, p.label, count(p.value))
    end
  end
  legend[#legend + 1] = "</ul>"
  out[#out + 1] = table.concat(legend)
  return table.concat(out)
end

local SERIES = { { "succeeded", "success" }, { "failed", "failure" }, { "pending", "pending" } }

local function chart_block(h, events, title, x0)
  h, events = h or {}, events or {}
  local series, kinds, has_bytes = {}, {}, false
  for _, s in ipairs(SERIES) do
    local pts = {}
    for _, p in ipairs(h) do pts[#pts + 1] = { p.t, p[s[2]] or 0 } end
    series[#series + 1] = { name = s[1], class = s[1], points = pts }
  end
  local markers = {}
  for _, e in ipairs(events) do
    local kind = (e.kind == "throttle" or e.kind == "retry" or e.kind == "restart") and e.kind or "event"
    kinds[kind] = (kinds[kind] or 0) + 1
    markers[#markers + 1] = { x = e.t, kind = kind, label = e.detail }
  end
  for _, p in ipairs(h) do if p.bytes then has_bytes = true end end
  local out = { '<div class="chart-wrap">', svg.line_chart{ series = series, markers = markers, title = title, x0 = x0 }, "</div>" }
  local legend = { '<ul class="legend">' }
  for _, s in ipairs(SERIES) do legend[#legend + 1] = ('<li><i class="sw-%s"></i>%s</li>'):format(s[1], s[1]) end
  for _, k in ipairs{ "throttle", "retry", "restart", "event" } do
    if kinds[k] then legend[#legend + 1] = ('<li><i class="m sw-%s"></i>%s ×%d</li>'):format(k, k, kinds[k]) end
  end
  legend[#legend + 1] = ('<li>%d polls recorded</li></ul>'):format(#h)
  out[#out + 1] = table.concat(legend)
  if has_bytes then
    local pts, prev, top = {}, nil, 0
    for _, p in ipairs(h) do
      local rate = 0
      if prev and p.t > prev.t then rate = math.max(0, ((p.bytes or 0) - (prev.bytes or 0)) / (p.t - prev.t)) end
      pts[#pts + 1] = { p.t, rate }
      prev, top = p, math.max(top, rate)
    end
    local unit = 1
    while top / unit >= 1024 and unit < 1024 ^ 4 do unit = unit * 1024 end
    out[#out + 1] = "<h3>Throughput</h3>"
    out[#out + 1] = '<div class="chart-wrap">' .. svg.line_chart{ series = { { name = "bytes/s", class = "bytes", points = pts } },
      markers = markers, title = "bytes per second", x0 = x0, y_unit = unit, y_format = function(v) return bytes(v) .. "/s" end } .. "</div>"
  end
  if #events > 0 then
    local rows = { '<details class="events"><summary>', #events == 1 and "1 event" or (#events .. " events"),
      '</summary><div class="scroll"><table><thead><tr><th>time</th><th>kind</th><th>detail</th></tr></thead><tbody>' }
    for _, e in ipairs(events) do
      rows[#rows + 1] = ('<tr><td class="mono">%s</td><td>%s</td><td>%s</td></tr>'):format(
        esc("+" .. svg.duration((e.t or 0) - (x0 or e.t or 0))), esc(e.kind), esc(e.detail))
    end
    rows[#rows + 1] = "</tbody></table></div></details>"
    out[#out + 1] = table.concat(rows)
  end
  return table.concat(out)
end

local function meta_list(items)
  local out = { '<dl class="meta">' }
  for _, it in ipairs(items) do
    if it[2] ~= nil and it[2] ~= "" then
      out[#out + 1] = ('<dt>%s</dt><dd%s>%s</dd>'):format(it[1], it[3] and (' id="' .. it[3] .. '"') or "", esc(it[2]))
    end
  end
  out[#out + 1] = "</dl>"
  return table.concat(out)
end

local function duration_text(a, b)
  if not (a and b) then return nil end
  local s = math.max(0, b - a)
  if s < 60 then return ("%.1f s"):format(s) end
  return svg.duration(s) .. (" (%.0f s)"):format(s)
end

local function groups_block(r, reason_index)
  local counts, codes = {}, {}
  for _, row in ipairs(r.rows or {}) do
    if row.outcome ~= "succeeded" then
      local reason = row.reason and tostring(row.reason) or ""
      counts[reason] = (counts[reason] or 0) + 1
      codes[reason] = codes[reason] or {}
      codes[reason][row.code and tostring(row.code) or row.outcome or ""] = true
    end
  end
  local list = {}
  for reason, n in pairs(counts) do list[#list + 1] = { reason = reason, n = n } end
  if #list == 0 then return '<p class="muted" id="no-problems">Every matched file succeeded.</p>' end
  table.sort(list, function(a, b) if a.n ~= b.n then return a.n > b.n end return a.reason < b.reason end)
  local out = { '<h3>By reason</h3><div class="scroll"><table id="groups"><thead><tr><th>reason</th><th>status</th>' ..
    '<th class="num">files</th></tr></thead><tbody>' }
  local shown = math.min(#list, 100)
  for i = 1, shown do
    local g = list[i]
    local cs = {}
    for c in pairs(codes[g.reason]) do cs[#cs + 1] = c end
    table.sort(cs)
    out[#out + 1] = ('<tr class="group" tabindex="0" data-reason="%d" title="show only these files"><td class="reason">%s</td>' ..
      '<td class="mono">%s</td><td class="num">%s</td></tr>'):format(reason_index[g.reason], g.reason == "" and "(no reason given)" or esc(g.reason),
      esc(table.concat(cs, ", ")), count(g.n))
  end
  out[#out + 1] = "</tbody></table></div>"
  if #list > shown then out[#out + 1] = ('<p class="muted">… and %d more reasons (filter the table below).</p>'):format(#list - shown) end
  return table.concat(out)
end

local function files_block(has_ops)
  return table.concat{
    '<div class="controls"><input id="f-q" type="search" placeholder="filter by file, status or reason" aria-label="filter rows">',
    '<select id="f-outcome" aria-label="outcome"><option value="problems">not succeeded</option><option value="failed">failed</option>',
    '<option value="skipped">skipped</option><option value="conflict">conflicts</option><option value="unknown">no outcome</option>',
    '<option value="succeeded">succeeded</option><option value="all">all files</option></select>',
    '<select id="f-size" aria-label="rows per page"><option value="100">100 a page</option><option value="1000">1,000 a page</option>',
    '<option value="0">all rows</option></select>',
    '<span id="f-reason" class="hidden">reason: <b id="f-reason-text"></b> <button id="f-reason-clear" type="button">clear</button></span></div>',
    '<div class="scroll"><table id="files"><thead><tr><th data-col="0"><button type="button">file</button></th>',
    '<th data-col="1"><button type="button">outcome</button></th><th data-col="2"><button type="button">status</button></th>',
    '<th data-col="3"><button type="button">reason</button></th>',
    has_ops and '<th data-col="4"><button type="button">operation</button></th>' or "",
    '</tr></thead><tbody id="files-body"></tbody></table></div>',
    '<p id="files-empty" class="hidden">no rows match</p>',
    '<div class="pager"><button id="page-prev" type="button">‹ previous</button><span id="page-no"></span>',
    '<button id="page-next" type="button">next ›</button><span id="files-info" class="muted"></span></div>',
    '<noscript><p>The table needs JavaScript; the JSON and CSV reports list every row.</p></noscript>',
  }
end

local function status_badge(r, t)
  if r.ok == false or t.failed > 0 or t.unknown > 0 or t.conflict > 0 then
    if t.succeeded > 0 then return '<span class="badge partial" id="status">finished with failures</span>' end
    return '<span class="badge bad" id="status">failed</span>'
  end
  return '<span class="badge ok" id="status">all succeeded</span>'
end

local KIND_TITLE = { import = "Import", queue = "Import queue", stow = "DICOMweb store (STOW-RS)",
  transfer = "Cloud Storage transfer", export = "Export" }

--- The HTML text of a report. Besides the fields of dicomgcs.report.build (`rows`, `totals`),
-- it shows what it finds of: `kind` ("import", "queue", "stow", "transfer"), `title`, `source`,
-- `store`, `operation`, `started`, `ended` (seconds since the epoch), `command`, `version`,
-- `history` and `events` (the operation's poll history), `bytes` (transfers), and for a queue run
-- `operations` = { {key=, name=, state=, totals=, history=, events=, started=, ended=, error=}, ... }.
function html.render(r)
  local t = totals_of(r)
  local title = r.title or ((KIND_TITLE[r.kind] or "Run") .. (r.source and (" of " .. r.source) or ""))
  local data, reason_index = blob(r)
  -- charts count from the earliest moment known: the server's start or our first poll or event
  -- (two clocks: the earlier one wins, so that no label is negative)
  local x0 = r.started
  for _, list in ipairs{ r.history or {}, r.events or {} } do
    if list[1] and list[1].t and (not x0 or list[1].t < x0) then x0 = list[1].t end
  end
  local ops = r.operations or {}
  local out = {
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    -- nothing may be fetched at view time; the inline style and script are the page's own
    [[<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; ]],
    [[script-src 'unsafe-inline'; img-src data:">]],
    '<meta name="generator" content="dicomgcs ', esc(r.version), '">',
    "<title>", esc(title), "</title><style>", CSS, "</style></head><body><main>",
    '<header class="top"><h1>', esc(title), status_badge(r, t), "</h1>",
    meta_list{
      { "source", r.source, "meta-source" }, { r.kind == "transfer" and "destination" or "store", r.store, "meta-store" },
      { "operation", r.operation },
      { "started", r.started and utc(r.started), "meta-started" }, { "ended", r.ended and utc(r.ended), "meta-ended" },
      { "duration", duration_text(r.started, r.ended), "meta-duration" },
      { "tool", "dicomgcs " .. tostring(r.version or "?"), "meta-version" },
    },
    r.command and ('<div><span class="muted">produced by</span><pre class="cmd" id="command">' .. esc(r.command) .. "</pre></div>") or "",
    "</header>",
    '<section id="totals-section"><h2>Totals</h2>',
    totals_block(t, "totals", r.bytes and
      ('<div class="card bytes"><div class="n">%s</div><div class="l">transferred</div></div>'):format(bytes(r.bytes))),
    "</section>",
    '<section id="progress"><h2>Progress</h2>', chart_block(r.history, r.events, "counters over time", x0), "</section>",
  }
  if #ops > 0 then
    out[#out + 1] = '<section id="operations"><h2>Operations</h2><div class="scroll"><table id="ops"><thead><tr><th>#</th><th>job</th>' ..
      '<th>state</th><th class="num">succeeded</th><th class="num">failed</th><th class="num">pending</th><th>duration</th></tr></thead><tbody>'
    for i, op in ipairs(ops) do
      local ot = totals_of(op)
      out[#out + 1] = ('<tr><td>%d</td><td><a href="#op-%d">%s</a></td><td>%s</td><td class="num">%s</td><td class="num">%s</td>' ..
        '<td class="num">%s</td><td>%s</td></tr>'):format(i, i, esc(op.key or op.name), esc(op.state), count(ot.succeeded),
        count(ot.failed), count(ot.pending), esc(duration_text(op.started, op.ended) or "—"))
    end
    out[#out + 1] = "</tbody></table></div>"
    for i, op in ipairs(ops) do
      out[#out + 1] = ('<div class="op" id="op-%d"><h3>%d. %s</h3>'):format(i, i, esc(op.key or op.name))
      out[#out + 1] = meta_list{ { "operation", op.name }, { "state", op.state }, { "source", op.source },
        { "started", op.started and utc(op.started) }, { "ended", op.ended and utc(op.ended) }, { "error", op.error } }
      out[#out + 1] = totals_block(totals_of(op), "totals-op-" .. i)
      out[#out + 1] = chart_block(op.history, op.events, "counters of " .. tostring(op.key or op.name), x0)
      out[#out + 1] = '<p><a href="#operations">↑ operations</a></p></div>'
    end
    out[#out + 1] = "</section>"
  end
  out[#out + 1] = '<section id="failures"><h2>Failures</h2>'
  out[#out + 1] = groups_block(r, reason_index)
  out[#out + 1] = '<h3>Files</h3>'
  out[#out + 1] = files_block(#ops > 0)
  out[#out + 1] = "</section>"
  out[#out + 1] = ('<footer>made by dicomgcs %s%s · one self-contained file: it works offline and prints</footer>'):format(
    esc(r.version or "?"), r.generated and (" on " .. utc(r.generated)) or "")
  out[#out + 1] = '</main><script type="application/json" id="report-data">'
  out[#out + 1] = script_json(data)
  out[#out + 1] = "</script><script>"
  out[#out + 1] = JS
  out[#out + 1] = "</script></body></html>\n"
  return table.concat(out)
end

return html
