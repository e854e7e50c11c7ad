// BeaZap dashboard charts: every <figure class="chart"> holds its data as JSON (drawn with uPlot).
// Okabe–Ito colours (colour-blind safe). x values are ISO days or "YYYY-MM-DDTHH:MM" buckets.
(function () {
  "use strict";
  var COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"];
  var lang = document.documentElement.lang || "pt-BR";
  var nf = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
  var dayFmt = new Intl.DateTimeFormat(lang, { day: "2-digit", month: "2-digit", timeZone: "UTC" });

  function toEpoch(bucket) {
    var m = /^(\d{4})-(\d{2})(?:-(\d{2}))?(?:T(\d{2}):(\d{2}))?/.exec(bucket);
    if (m) return Date.UTC(+m[1], +m[2] - 1, +(m[3] || 1), +(m[4] || 0), +(m[5] || 0)) / 1000;
    var w = /^(\d{4})-W(\d{2})/.exec(bucket);  // ISO week: Monday of that week
    if (w) { var jan4 = Date.UTC(+w[1], 0, 4); var day = (new Date(jan4).getUTCDay() + 6) % 7;
      return (jan4 - day * 864e5 + (+w[2] - 1) * 7 * 864e5) / 1000; }
    return NaN;
  }

  function draw(fig) {
    var spec = JSON.parse(fig.querySelector("script[type='application/json']").textContent);
    var pct = fig.dataset.kind === "pct";
    var hourly = spec.x.length > 0 && String(spec.x[0]).indexOf("T") > 0;
    var data = [spec.x.map(toEpoch)].concat(spec.series.map(function (s) { return s.values; }));
    var opts = {
      width: Math.max(280, fig.clientWidth || 800), height: 260,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      fmtDate: function (tpl) { return uPlot.fmtDate(tpl, lang.indexOf("pt") === 0 ? {
        MMM: ["jan","fev","mar","abr","mai","jun","jul","ago","set","out","nov","dez"],
        MMMM: ["janeiro","fevereiro","março","abril","maio","junho","julho","agosto","setembro","outubro","novembro","dezembro"],
        WWW: ["dom","seg","ter","qua","qui","sex","sáb"], WWWW: ["domingo","segunda","terça","quarta","quinta","sexta","sábado"]
      } : undefined); },
      series: [{ label: "", value: function (u, v) { return v == null ? "" : (hourly ? new Date(v * 1e3).toISOString().slice(0, 16).replace("T", " ") : dayFmt.format(new Date(v * 1e3))); } }].concat(spec.series.map(function (s, i) {
        return { label: s.label, stroke: COLORS[i % COLORS.length], width: 2, dash: i ? [6, 3] : undefined,
                 value: function (u, v) { return v == null ? "—" : nf.format(v) + (pct ? "%" : ""); } };
      })),
      axes: [hourly ? {} : {
        incrs: [86400, 7 * 86400, 30 * 86400, 365 * 86400],
        values: function (u, splits) { return splits.map(function (v) { return dayFmt.format(new Date(v * 1e3)); }); }
      }, { values: function (u, vals) { return vals.map(function (v) { return nf.format(v) + (pct ? "%" : ""); }); } }]
    };
    fig.chart = new uPlot(opts, data, fig);
    fig.dataset.drawn = "true";
  }

  function drawAll() {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll("figure.chart").forEach(function (fig) {
      try { draw(fig); } catch (err) { fig.dataset.drawn = "error"; }
    });
    document.documentElement.dataset.chartsDrawn = "true";
    if (window.performance && performance.mark) performance.mark("beazap-charts-drawn");
  }

  // Choosing a period other than "custom" fills the dates; editing a date switches to "custom".
  function wirePeriod() {
    var period = document.getElementById("period");
    if (!period) return;
    ["from", "to"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.addEventListener("change", function () { period.value = "custom"; });
    });
    // Keep the shared URL short: no dates unless the period is custom, no empty filters.
    period.form.addEventListener("submit", function () {
      period.form.querySelectorAll("input, select").forEach(function (el) {
        var dates = (el.name === "from" || el.name === "to") && period.value !== "custom";
        if (dates || el.value === "") el.disabled = true;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(); wirePeriod(); });
})();
