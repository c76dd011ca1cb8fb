//! Plots as SVG text, each with the data it draws as CSV, for the HTML
//! report and a run's `--out` directory: energy per token by part, latency
//! distributions, and a comparison's figures against the first system.

use crate::compare::Compared;
use crate::report::Report;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt::Write;

/// One plot: a file-friendly name, a title, the SVG and its data.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    pub name: &'static str,
    pub title: String,
    pub svg: String,
    pub csv: String,
}

const SIZE: (u32, u32) = (720, 400);
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Energy per output token of each system, stacked by part (the largest
/// parts; the rest as "other").
pub fn energy(reports: &[Report]) -> Plot {
    const PARTS: usize = 7;
    let mut totals: Vec<(String, f64)> = Vec::new();
    for r in reports {
        for (part, j) in &r.energy_j.breakdown {
            match totals.iter_mut().find(|(p, _)| p == part) {
                Some((_, t)) => *t += j,
                None => totals.push((part.clone(), *j)),
            }
        }
    }
    totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut parts: Vec<String> = totals.iter().take(PARTS).map(|(p, _)| p.clone()).collect();
    if totals.len() > PARTS {
        parts.push("other".into());
    }
    // Per system, per part: joules per token.
    let rows: Vec<Vec<f64>> = reports
        .iter()
        .map(|r| {
            let tokens = r.tokens_generated.max(1) as f64;
            let of = |p: &str| r.energy_j.breakdown.get(p).copied().unwrap_or(0.0) / tokens;
            let mut row: Vec<f64> = parts.iter().take(PARTS).map(|p| of(p)).collect();
            if parts.len() > PARTS {
                let named: f64 = row.iter().sum();
                row.push(r.energy_j.total / tokens - named);
            }
            row
        })
        .collect();
    let mut csv =
        format!("system,{}\n", parts.iter().map(|p| format!("{p}_j_per_token")).collect::<Vec<_>>().join(","));
    for (r, row) in reports.iter().zip(&rows) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        let _ = writeln!(csv, "{},{}", r.hardware.name, cells.join(","));
    }
    let top = rows.iter().map(|row| row.iter().sum::<f64>()).fold(0.0, f64::max).max(f64::MIN_POSITIVE) * 1.1;
    let names: Vec<String> = reports.iter().map(|r| r.hardware.name.clone()).collect();
    let svg = draw(|root| {
        // A column to the right of the bars is left for the legend.
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(8)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..(names.len() + 1) as f64, -LABEL_BAND * top..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|y| if *y < 0.0 { String::new() } else { format!("{y:.2}") })
            .y_desc("J per output token")
            .draw()?;
        chart.draw_series(category_labels(&names, top, 12))?;
        for (p, part) in parts.iter().enumerate() {
            let bars = rows.iter().enumerate().map(|(i, row)| {
                let below: f64 = row[..p].iter().sum();
                let x = i as f64;
                Rectangle::new([(x + 0.2, below), (x + 0.8, below + row[p])], color(p).filled())
            });
            chart
                .draw_series(bars)?
                .label(part.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color(p).filled()));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        Ok(())
    });
    Plot { name: "energy", title: "Energy per output token, by part".into(), svg, csv }
}

/// The cumulative distribution of one latency per request (seconds), a
/// line per system.
pub fn latency_cdf(name: &'static str, what: &str, series: &[(String, Vec<f64>)]) -> Plot {
    let mut csv = String::from("system,latency_s,fraction\n");
    let mut curves = Vec::new();
    for (system, values) in series {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let points: Vec<(f64, f64)> = sorted.iter().enumerate().map(|(i, v)| (v * 1e3, (i + 1) as f64 / n)).collect();
        for (ms, f) in &points {
            let _ = writeln!(csv, "{system},{},{f}", ms / 1e3);
        }
        curves.push((system.clone(), points));
    }
    let right = curves.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x)).fold(0.0, f64::max).max(1e-6) * 1.05;
    let svg = draw(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..right, 0.0..1.0)?;
        chart.configure_mesh().x_desc(format!("{what} (ms)")).y_desc("fraction of requests").draw()?;
        for (i, (system, points)) in curves.iter().enumerate() {
            let steps = points.iter().copied();
            chart
                .draw_series(LineSeries::new(steps, color(i).stroke_width(2)))?
                .label(system.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color(i).stroke_width(2)));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        Ok(())
    });
    Plot { name, title: format!("{what}: cumulative distribution over requests"), svg, csv }
}

/// Each compared figure as a group of bars, one per system, as the ratio to
/// the first system (1 is the first system's value).
pub fn compared(names: &[String], figures: &[Compared]) -> Plot {
    let shown: Vec<&Compared> = figures.iter().filter(|f| f.ratios.iter().all(Option::is_some)).collect();
    let mut csv = format!("figure,unit,{}\n", names.iter().map(|n| format!("{n}_ratio")).collect::<Vec<_>>().join(","));
    for f in &shown {
        let cells: Vec<String> = f.ratios.iter().map(|r| format!("{}", r.unwrap_or(f64::NAN))).collect();
        let _ = writeln!(csv, "{},{},{}", f.figure, f.unit, cells.join(","));
    }
    let top = shown.iter().flat_map(|f| f.ratios.iter().flatten()).fold(1.0, |a: f64, b| a.max(*b)) * 1.4;
    let labels: Vec<String> = shown.iter().map(|f| f.figure.to_string()).collect();
    let width = names.len().max(1) as f64;
    let svg = draw(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(8)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..labels.len().max(1) as f64, -LABEL_BAND * top..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|y| if *y < 0.0 { String::new() } else { format!("{y:.1}") })
            .y_desc(format!("ratio to {}", names.first().map_or("", String::as_str)))
            .draw()?;
        chart.draw_series(category_labels(&labels, top, 9))?;
        for (s, name) in names.iter().enumerate() {
            let bars = shown.iter().enumerate().map(|(i, f)| {
                let x = i as f64 + 0.1 + 0.8 * s as f64 / width;
                let r = f.ratios[s].unwrap_or(0.0);
                Rectangle::new([(x, 0.0), (x + 0.8 / width, r)], color(s).filled())
            });
            chart
                .draw_series(bars)?
                .label(name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color(s).filled()));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        Ok(())
    });
    Plot { name: "compare", title: "Headline figures against the first system".into(), svg, csv }
}

/// The share of a bar chart's height below zero where its category names go.
const LABEL_BAND: f64 = 0.08;

/// Each category's name, centred under its unit-wide column in the label band.
fn category_labels(names: &[String], top: f64, size: u32) -> Vec<Text<'static, (f64, f64), String>> {
    let style = TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Text::new(n.clone(), (i as f64 + 0.5, -LABEL_BAND * top / 2.0), style.clone()))
        .collect()
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws on a fresh SVG canvas and returns its text.
fn draw(plot: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> DrawResult) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).expect("an SVG string takes any drawing");
        plot(&root).expect("an SVG string takes any drawing");
        root.present().expect("an SVG string takes any drawing");
    }
    svg
}
