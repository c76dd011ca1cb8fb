//! One self-contained HTML page per run or comparison: the plain-words
//! verdict first, then the figures, the plots (inline SVG, each with its
//! data), the energy table, and the inputs. It loads nothing: no script, no
//! stylesheet, font or image from anywhere else.

use crate::compare::compare;
use crate::plots::{self, Plot};
use crate::report::Report;
use std::fmt::Write;
use workloads::RunResult;

/// A run or a comparison, with the texts of the inputs it was run from.
#[derive(Debug)]
pub struct Inputs {
    /// (name, text): resolved specs, the manifest.
    pub files: Vec<(String, String)>,
    /// Per report, its requests' latencies.
    pub latencies: Vec<Latencies>,
}

/// One run's per-request latencies, in seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latencies {
    pub ttft_s: Vec<f64>,
    pub tpot_s: Vec<f64>,
}

impl Latencies {
    pub fn of(r: &RunResult) -> Latencies {
        // To requests.csv's nanoseconds, so a page rebuilt from that file is this one.
        let secs = |t: Option<sim_core::Time>| t.and_then(|t| format!("{:.9}", t.as_secs_f64()).parse().ok());
        Latencies {
            ttft_s: r.requests.iter().filter_map(|q| secs(q.ttft())).collect(),
            tpot_s: r.requests.iter().filter_map(|q| secs(q.tpot())).collect(),
        }
    }

    /// From a run's `requests.csv` (`source` names it in errors).
    pub fn from_csv(source: &str, text: &str) -> Result<Latencies, String> {
        let mut lines = text.lines();
        if lines.next() != Some(crate::requests::HEADER) {
            return Err(format!("{source}:1: expected the header `{}`", crate::requests::HEADER));
        }
        let columns: Vec<&str> = crate::requests::HEADER.split(',').collect();
        let at = |name: &str| columns.iter().position(|c| *c == name).expect("the header has the column");
        let (ttft, tpot) = (at("ttft_s"), at("tpot_s"));
        let mut out = Latencies::default();
        for (i, line) in lines.enumerate() {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != columns.len() {
                return Err(format!("{source}:{}: expected {} columns, found {}", i + 2, columns.len(), cells.len()));
            }
            for (column, into) in [(ttft, &mut out.ttft_s), (tpot, &mut out.tpot_s)] {
                if cells[column].is_empty() {
                    continue;
                }
                let v: f64 = cells[column].parse().map_err(|_| {
                    format!(
                        "{source}:{}: column `{}`: expected seconds, found `{}`",
                        i + 2,
                        columns[column],
                        cells[column]
                    )
                })?;
                into.push(v);
            }
        }
        Ok(out)
    }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}\
p.lead{font-size:1.1rem;line-height:1.5;background:#f4f7fb;padding:1rem;border-left:4px solid #1f77b4}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}\
td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;padding:.5rem;overflow-x:auto}\
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn percent_more(a: f64, b: f64) -> String {
    let change = (a / b - 1.0) * 100.0;
    if change >= 0.0 { format!("{change:.0}% more") } else { format!("{:.0}% less", -change) }
}

/// The verdict in plain words: who was faster, who used less energy per
/// token, who was cheaper, and what the energy went to.
fn lead(reports: &[Report]) -> String {
    let first = &reports[0];
    if reports.len() == 1 {
        let why = first.bottleneck.as_ref().map_or(String::new(), |b| format!(" {}.", capitalised(&b.explanation)));
        return format!(
            "{} served {} at {:.0} tokens per second, using {:.3} joules per token ({:.0} W on average).{}",
            first.hardware.name,
            first.workload.name,
            first.throughput_tokens_per_s,
            first.joules_per_token,
            first.average_power_w,
            why
        );
    }
    let best = |key: fn(&Report) -> f64, most: bool| {
        let mut sorted: Vec<&Report> = reports.iter().collect();
        sorted.sort_by(|a, b| if most { key(b).total_cmp(&key(a)) } else { key(a).total_cmp(&key(b)) });
        (sorted[0], sorted[1])
    };
    let (fast, next) = best(|r| r.throughput_tokens_per_s, true);
    let (frugal, spender) = best(|r| r.joules_per_token, false);
    let mut text = format!(
        "For {}, {} was the fastest: {:.0} tokens per second, {} than {}. {} used the least energy: {:.3} joules \
         per output token, {} than {}.",
        first.workload.name,
        fast.hardware.name,
        fast.throughput_tokens_per_s,
        percent_more(fast.throughput_tokens_per_s, next.throughput_tokens_per_s),
        next.hardware.name,
        frugal.hardware.name,
        frugal.joules_per_token,
        percent_more(frugal.joules_per_token, spender.joules_per_token),
        spender.hardware.name
    );
    if let Some((part, gap)) = largest_gap(frugal, spender) {
        let _ = write!(text, " The largest difference is in {part}: {gap:.3} J per token.");
    }
    let priced: Vec<&Report> =
        reports.iter().filter(|r| r.cost.as_ref().is_some_and(|c| c.usd_per_million_tokens.is_some())).collect();
    if priced.len() == reports.len() {
        let usd = |r: &Report| r.cost.as_ref().and_then(|c| c.usd_per_million_tokens).unwrap_or(f64::INFINITY);
        let (cheap, dear) = best(usd, false);
        let _ = write!(
            text,
            " {} was the cheapest per token: ${:.3} per million, against ${:.3} on {}.",
            cheap.hardware.name,
            usd(cheap),
            usd(dear),
            dear.hardware.name
        );
    } else {
        text.push_str(" Costs are not compared: not every hardware spec gives a [cost] table.");
    }
    text
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or(String::new(), |c| c.to_uppercase().chain(chars).collect())
}

/// The energy part whose joules per token differ most between two runs.
fn largest_gap(a: &Report, b: &Report) -> Option<(String, f64)> {
    let per_token = |r: &Report, part: &str| {
        r.energy_j.breakdown.get(part).copied().unwrap_or(0.0) / r.tokens_generated.max(1) as f64
    };
    a.energy_j
        .breakdown
        .keys()
        .chain(b.energy_j.breakdown.keys())
        .map(|p| (p.clone(), (per_token(b, p) - per_token(a, p)).abs()))
        .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)))
}

fn table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>\n");
}

fn figure(out: &mut String, plot: &Plot) {
    let _ = writeln!(
        out,
        "<figure id=\"plot-{}\"><figcaption>{}</figcaption>{}<details><summary>Data (CSV)</summary><pre>{}</pre>\
         </details></figure>",
        plot.name,
        escape(&plot.title),
        plot.svg,
        escape(&plot.csv)
    );
}

/// The plots of `reports` and their requests' latencies.
pub fn plots(reports: &[Report], latencies: &[Latencies]) -> Vec<Plot> {
    let names: Vec<String> = reports.iter().map(|r| r.hardware.name.clone()).collect();
    let series = |pick: fn(&Latencies) -> &Vec<f64>| -> Vec<(String, Vec<f64>)> {
        names.iter().zip(latencies).map(|(n, l)| (n.clone(), pick(l).clone())).collect()
    };
    let mut out = vec![plots::energy(reports)];
    out.push(plots::latency_cdf("ttft", "Time to first token", &series(|l| &l.ttft_s)));
    out.push(plots::latency_cdf("tpot", "Time per output token", &series(|l| &l.tpot_s)));
    if reports.len() > 1 {
        out.push(plots::compared(&names, &compare(reports)));
    }
    out
}

/// The page of one run (one report) or of a comparison (several).
pub fn page(reports: &[Report], inputs: &Inputs) -> String {
    let title = match reports {
        [one] => format!("{} on {}", one.workload.name, one.hardware.name),
        many => format!(
            "{}: {}",
            many[0].workload.name,
            many.iter().map(|r| r.hardware.name.as_str()).collect::<Vec<_>>().join(" vs ")
        ),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>npusim: {}</title><style>{STYLE}</style>\
         </head><body>\n<h1>npusim: {}</h1>\n<p class=\"lead\">{}</p>\n",
        escape(&title),
        escape(&title),
        escape(&lead(reports))
    );
    out.push_str("<h2>Summary</h2>\n");
    for r in reports {
        let _ = writeln!(out, "<pre>{}</pre>", escape(&crate::summary(r)));
    }
    out.push_str("<h2>Figures</h2>\n");
    let names: Vec<String> = reports.iter().map(|r| r.hardware.name.clone()).collect();
    let header: Vec<String> = std::iter::once("figure".to_string()).chain(names.iter().cloned()).collect();
    let rows: Vec<Vec<String>> = crate::compare::rows(reports)
        .into_iter()
        .map(|(name, cells)| std::iter::once(name.to_string()).chain(cells).collect())
        .collect();
    table(&mut out, &header, &rows);
    if let Some(note) = crate::compare::cost_note(reports) {
        let _ = writeln!(out, "<p>{}</p>", escape(&note));
    }
    out.push_str("<h2>Plots</h2>\n");
    for plot in plots(reports, &inputs.latencies) {
        figure(&mut out, &plot);
    }
    out.push_str("<h2>Energy</h2>\n");
    let mut parts: Vec<&String> = reports.iter().flat_map(|r| r.energy_j.breakdown.keys()).collect();
    parts.sort();
    parts.dedup();
    let rows: Vec<Vec<String>> = parts
        .iter()
        .map(|p| {
            let cells = reports.iter().map(|r| {
                let j = r.energy_j.breakdown.get(*p).copied().unwrap_or(0.0);
                format!("{j:.2} J ({:.4} J/token)", j / r.tokens_generated.max(1) as f64)
            });
            std::iter::once((*p).clone()).chain(cells).collect()
        })
        .collect();
    let header: Vec<String> = std::iter::once("part".to_string()).chain(names).collect();
    table(&mut out, &header, &rows);
    out.push_str("<h2>Inputs</h2>\n");
    for (name, text) in &inputs.files {
        let _ = writeln!(out, "<details><summary>{}</summary><pre>{}</pre></details>", escape(name), escape(text));
    }
    out.push_str("</body></html>\n");
    out
}
