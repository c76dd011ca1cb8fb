//! The one-file HTML report of `run --html` and `compare --html`: it holds
//! the verdict, figures, every plot with its data, the energy table and the
//! inputs, and loads nothing from anywhere. Rendered in headless Chromium
//! where it is installed (`.ci/run` installs it), it makes no network
//! request and logs no console error.

use npusim_tests::{file, npusim, scratch};
use std::path::Path;
use std::process::Command;

const WORKLOAD: &str = "base = \"axk1-decode\"\nname = \"served\"\n[scenario]\nbatch = 8\n\
                        output_tokens = { distribution = \"lognormal\", mean = 6.0, std_dev = 3.0, min = 2, max = 16 }\n\
                        [requests]\narrivals = \"poisson\"\nrate = 50.0\ncount = 16\n";

/// The plots every page has, and the comparison's.
const PLOTS: [&str; 3] = ["plot-energy", "plot-ttft", "plot-tpot"];

fn self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    for banned in ["<script", "<link", "<img", "<iframe", "@import", "url("] {
        assert!(!html.contains(banned), "the page has `{banned}`");
    }
    // The only addresses are the SVG namespace's, which names and loads nothing.
    let addresses = html.matches("http://").count() + html.matches("https://").count();
    let namespaces = html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
    assert_eq!(addresses, namespaces, "an address other than the SVG namespace");
}

fn svg_sizes(html: &str) -> Vec<(u32, u32)> {
    html.match_indices("<svg ")
        .map(|(at, _)| {
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            let attr = |name: &str| -> u32 {
                let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                tag[start..start + tag[start..].find('"').unwrap()].parse().unwrap()
            };
            (attr("width"), attr("height"))
        })
        .collect()
}

#[test]
fn a_run_writes_a_self_contained_page_with_its_plots_and_inputs() {
    let dir = scratch("html");
    let page = dir.join("run.html");
    let out = npusim(&["run", "--workload", &file("w.toml", WORKLOAD), "--html", page.to_str().unwrap()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    self_contained(&html);
    for plot in PLOTS {
        assert!(html.contains(&format!("<figure id=\"{plot}\">")), "{plot} missing");
    }
    assert_eq!(svg_sizes(&html), vec![(720, 400); 3]);
    assert!(html.contains("<p class=\"lead\">sovereign-node served served at"), "the verdict comes first");
    for section in ["hardware.toml", "workload.toml", "manifest.json", "Data (CSV)", "memory.hbm"] {
        assert!(html.contains(section), "{section} missing");
    }
    render(&page);
}

#[test]
fn a_comparison_says_who_won_and_plots_the_ratios() {
    let dir = scratch("html-compare");
    let page = dir.join("compare.html");
    let w = file("w.toml", WORKLOAD);
    let out = npusim(&[
        "compare",
        "--hw",
        "sovereign-node",
        "--hw",
        "h100-node",
        "--workload",
        &w,
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    self_contained(&html);
    assert!(html.contains("<figure id=\"plot-compare\">"));
    assert_eq!(svg_sizes(&html).len(), 4);
    let json: serde_json::Value = serde_json::from_str(
        &npusim(&["compare", "--hw", "sovereign-node", "--hw", "h100-node", "--workload", &w, "--json"]).stdout,
    )
    .unwrap();
    let rate = |i: usize| json["reports"][i]["throughput_tokens_per_s"].as_f64().unwrap();
    let fastest = if rate(0) >= rate(1) { "sovereign-node" } else { "h100-node" };
    assert!(html.contains(&format!("{fastest} was the fastest")), "the verdict names the faster system");
    render(&page);
}

/// Renders `page` in headless Chromium, if it is installed: no network
/// request beyond the file itself, no console error, and the rendered DOM
/// keeps every plot at its size.
fn render(page: &Path) {
    let Some(chromium) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        println!("skipped: Chromium is not installed");
        return;
    };
    let dir = scratch("chromium");
    let netlog = dir.join("net.json");
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("CONSOLE"), "console messages: {stderr}");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(svg_sizes(&dom).iter().all(|&(w, h)| w > 0 && h > 0) && dom.contains("plot-energy"));
    // The browser makes requests of its own (time, accounts), initiated by
    // "not an origin"; a request of the page's would carry its origin
    // ("null" for a file). The net log records every one.
    let log = std::fs::read_to_string(&netlog).expect("chromium writes its net log");
    let initiators: Vec<&str> = log.split("\"initiator\":\"").skip(1).map(|s| &s[..s.find('"').unwrap_or(0)]).collect();
    assert!(initiators.iter().all(|i| *i == "not an origin"), "the page made requests: {initiators:?}");
}

#[test]
fn the_report_command_rebuilds_a_runs_page_from_its_out_directory() {
    let dir = scratch("report-dir");
    let out = npusim(&["run", "--workload", &file("w.toml", WORKLOAD), "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    for plot in ["energy", "ttft", "tpot"] {
        for ext in ["svg", "csv"] {
            assert!(dir.join("plots").join(format!("{plot}.{ext}")).is_file(), "plots/{plot}.{ext}");
        }
    }
    let again = dir.join("again.html");
    let made = npusim(&["report", dir.to_str().unwrap(), "--html", again.to_str().unwrap()]);
    assert_eq!(made.status, 0, "{}", made.stderr);
    let (first, second) =
        (std::fs::read_to_string(dir.join("report.html")).unwrap(), std::fs::read_to_string(&again).unwrap());
    assert!(first == second, "the page rebuilt from report.json and requests.csv differs from the run's");
    // A directory that is not a run's is refused, naming the file.
    std::fs::write(dir.join("report.json"), "{\"schema_version\": 1}").unwrap();
    npusim_tests::refused(
        &["report", dir.to_str().unwrap(), "--html", again.to_str().unwrap()],
        &["report.json", "schema_version", "found 1"],
    );
}
