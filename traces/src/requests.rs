//! Request traces: CSV files of request arrivals and lengths, in npusim's
//! own form or the public Azure LLM inference trace's.
//!
//! - npusim: header `arrival_s,prompt_tokens,output_tokens`; arrival in
//!   seconds (a decimal number).
//! - Azure (AzurePublicDataset, 2023 and 2024 LLM inference traces): header
//!   `TIMESTAMP,ContextTokens,GeneratedTokens`; the timestamp is a date and
//!   time, `2023-11-16 18:15:46.6805900`.
//! - Lengths only: header `prompt_tokens,output_tokens`, every request at
//!   time zero (an empirical length file, `requests.lengths`).
//!
//! Arrivals are made relative to the first request and must not go
//! backwards; every error names the line and column.

use models::input::{InputError, Problem};
use sim_core::Time;
use workloads::workload::TraceRequest;

/// Which form a trace is in, from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Npusim,
    Azure,
    Lengths,
}

use workloads::lengths::MAX_TOKENS;

const NPUSIM_HEADER: [&str; 3] = ["arrival_s", "prompt_tokens", "output_tokens"];
const AZURE_HEADER: [&str; 3] = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"];
const LENGTHS_HEADER: [&str; 2] = ["prompt_tokens", "output_tokens"];

fn problem(source: &str, line: u64, column: usize, path: &str, message: impl Into<String>) -> InputError {
    InputError {
        problems: vec![Problem {
            source: source.into(),
            line: Some(line as usize),
            column: Some(column),
            path: path.into(),
            message: message.into(),
        }],
    }
}

/// Parse a request trace named `source`.
pub fn parse(source: &str, text: &str) -> Result<(Form, Vec<TraceRequest>), InputError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| problem(source, 1, 1, "header", e.to_string()))?.clone();
    let names: Vec<&str> = header.iter().collect();
    let form = if names == NPUSIM_HEADER {
        Form::Npusim
    } else if names == AZURE_HEADER {
        Form::Azure
    } else if names == LENGTHS_HEADER {
        Form::Lengths
    } else {
        return Err(problem(
            source,
            1,
            1,
            "header",
            format!(
                "expected `{}`, the Azure trace's `{}` or a length file's `{}`, found `{}`",
                NPUSIM_HEADER.join(","),
                AZURE_HEADER.join(","),
                LENGTHS_HEADER.join(","),
                names.join(",")
            ),
        ));
    };
    let mut out = Vec::new();
    let mut first: Option<u128> = None;
    let mut last = 0u128;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            problem(source, line, 1, "", e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        // Columns are 1-based; a field's column is where it starts on its line.
        let column = |i: usize| record.iter().take(i).map(|f| f.len() + 1).sum::<usize>() + 1;
        let field = |i: usize| {
            record.get(i).ok_or_else(|| {
                let message = format!("expected {} fields on the line", header.len());
                problem(source, line, column(i), header.get(i).unwrap_or(""), message)
            })
        };
        // A request of no prompt or no answer has nothing to serve; counts
        // past 2^24 are longer than any model reads.
        let count = |i: usize| -> Result<u32, InputError> {
            let text = field(i)?;
            text.parse::<u32>().ok().filter(|n| (1..=MAX_TOKENS).contains(n)).ok_or_else(|| {
                let message = format!("expected a token count from 1 to {MAX_TOKENS}, found `{text}`");
                problem(source, line, column(i), &header[i], message)
            })
        };
        let at_ps = match form {
            Form::Lengths => 0,
            Form::Npusim => {
                let text = field(0)?;
                let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
                whole
                    .parse::<u128>()
                    .ok()
                    .zip(fraction_ps(fraction))
                    .map(|(s, f)| s * 1_000_000_000_000 + f)
                    .ok_or_else(|| {
                        problem(source, line, 1, "arrival_s", format!("expected seconds of 0 or more, found `{text}`"))
                    })?
            }
            Form::Azure => {
                let text = field(0)?;
                timestamp_ps(text).ok_or_else(|| {
                    problem(
                        source,
                        line,
                        1,
                        "TIMESTAMP",
                        format!("expected a date and time like `2023-11-16 18:15:46.6805900`, found `{text}`"),
                    )
                })?
            }
        };
        let start = *first.get_or_insert(at_ps);
        if at_ps < last {
            return Err(problem(
                source,
                line,
                1,
                &header[0],
                "expected arrivals in time order: this one is earlier than the line before",
            ));
        }
        last = at_ps;
        let arrival = u64::try_from(at_ps - start).map_err(|_| {
            problem(source, line, 1, &header[0], "expected a trace shorter than 213 days (the engine's time range)")
        })?;
        let lengths_at = usize::from(form != Form::Lengths);
        out.push(TraceRequest {
            arrival: Time::from_ps(arrival),
            prompt_tokens: count(lengths_at)?,
            output_tokens: count(lengths_at + 1)?,
        });
    }
    if out.is_empty() {
        return Err(problem(source, 1, 1, "", "expected at least one request after the header"));
    }
    Ok((form, out))
}

/// `requests` as a trace in `form`. Azure timestamps count from
/// 2024-01-01 00:00:00, with the trace's seven decimals.
pub fn write(form: Form, requests: &[TraceRequest]) -> String {
    let mut out = String::with_capacity(48 * (requests.len() + 1));
    let header = match form {
        Form::Npusim => &NPUSIM_HEADER[..],
        Form::Azure => &AZURE_HEADER[..],
        Form::Lengths => &LENGTHS_HEADER[..],
    };
    out.push_str(&header.join(","));
    out.push('\n');
    const BASE_DAYS: i64 = 19_723; // 2024-01-01
    for r in requests {
        let ps = r.arrival.as_ps();
        let when = match form {
            Form::Lengths => {
                out.push_str(&format!("{},{}\n", r.prompt_tokens, r.output_tokens));
                continue;
            }
            Form::Npusim => format!("{}.{:012}", ps / 1_000_000_000_000, ps % 1_000_000_000_000),
            Form::Azure => {
                let (seconds, fraction) = (ps / 1_000_000_000_000, ps % 1_000_000_000_000);
                let (y, m, d) = civil_from_days(BASE_DAYS + (seconds / 86_400) as i64);
                let s = seconds % 86_400;
                format!(
                    "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:07}",
                    s / 3600,
                    s / 60 % 60,
                    s % 60,
                    fraction / 100_000
                )
            }
        };
        out.push_str(&format!("{when},{},{}\n", r.prompt_tokens, r.output_tokens));
    }
    out
}

/// The date of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Picoseconds since 1970-01-01 of `YYYY-MM-DD HH:MM:SS[.fraction]` (UTC).
fn timestamp_ps(text: &str) -> Option<u128> {
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let fraction_ps = fraction_ps(fraction)?;
    let days = u128::try_from(days_from_civil(y, m, day)).ok()?;
    let seconds = days * 86_400 + (hh * 3600 + mm * 60 + ss) as u128;
    Some(seconds * 1_000_000_000_000 + fraction_ps)
}

/// Picoseconds of the digits after a decimal point (at most 12 of them, exactly).
fn fraction_ps(digits: &str) -> Option<u128> {
    if digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    Some(digits.parse::<u128>().ok()? * 10u128.pow(12 - digits.len() as u32))
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_timestamps_become_arrivals_from_the_first_request() {
        let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                    2023-11-16 18:15:46.6805900,374,44\n\
                    2023-11-16 18:15:50.9951690,396,109\n\
                    2023-11-17 00:00:00.0000000,100,1\n";
        let (form, rows) = parse("azure.csv", text).unwrap();
        assert_eq!(form, Form::Azure);
        assert_eq!(rows[0], TraceRequest { arrival: Time::ZERO, prompt_tokens: 374, output_tokens: 44 });
        assert_eq!(rows[1].arrival, Time::from_ps(4_314_579_000_000));
        // Across midnight: 5 h 44 min 13.3194100 s after the first.
        assert_eq!(rows[2].arrival, Time::from_ps((5 * 3600 + 44 * 60 + 13) * 1_000_000_000_000 + 319_410_000_000));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 1, 1), 19_723);
        assert_eq!(civil_from_days(19_723 + 60), (2024, 3, 1));
    }

    #[test]
    fn written_traces_read_back_the_same_in_every_form() {
        let rows: Vec<TraceRequest> = (0..50u64)
            .map(|i| TraceRequest {
                // Azure's timestamps have 100 ns steps.
                arrival: Time::from_ps(i * i * 7_654_321_100_000),
                prompt_tokens: 10 + i as u32,
                output_tokens: 1 + i as u32 % 7,
            })
            .collect();
        for form in [Form::Npusim, Form::Azure, Form::Lengths] {
            let (read_form, read) = parse("t.csv", &write(form, &rows)).unwrap();
            assert_eq!(read_form, form);
            // A length file keeps the lengths and puts every request at time zero.
            let expected: Vec<TraceRequest> = match form {
                Form::Lengths => rows.iter().map(|r| TraceRequest { arrival: Time::ZERO, ..*r }).collect(),
                _ => rows.clone(),
            };
            assert_eq!(read, expected, "{form:?}");
        }
    }

    #[test]
    fn npusim_form_and_located_errors() {
        let (form, rows) = parse("r.csv", "arrival_s,prompt_tokens,output_tokens\n0.5,10,2\n1.25,20,3\n").unwrap();
        assert_eq!(form, Form::Npusim);
        assert_eq!(rows[1].arrival, Time::from_ps(750_000_000_000));
        let e = parse("r.csv", "arrival_s,prompt_tokens,output_tokens\n0.5,10,2\n1.0,x,3\n").unwrap_err();
        let p = &e.problems[0];
        assert_eq!((p.line, p.column, p.path.as_str()), (Some(3), Some(5), "prompt_tokens"), "{e}");
        let e = parse("r.csv", "arrival_s,prompt_tokens,output_tokens\n2,10,2\n1,10,3\n").unwrap_err();
        assert!(e.to_string().contains("time order"), "{e}");
        let e = parse("r.csv", "time,in,out\n").unwrap_err();
        assert!(e.to_string().contains("TIMESTAMP,ContextTokens,GeneratedTokens"), "{e}");
        let e = parse("a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-13-01 00:00:00,1,1\n").unwrap_err();
        assert_eq!(e.problems[0].line, Some(2));
    }
}
