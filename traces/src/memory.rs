//! Memory request traces: one request per line, `<cycle> <hex address> <R|W>`
//! (the cycle in memory command-clock cycles, the address in hexadecimal with
//! or without `0x`). Blank lines and lines starting with `#` are skipped.
//!
//! ```text
//! # cycle  address     op
//! 0        0x1f3c0     R
//! 4        0x8a40      W
//! ```

use std::fmt;
use std::io::BufRead;

/// One request of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRequest {
    pub cycle: u64,
    pub address: u64,
    pub write: bool,
}

impl fmt::Display for MemoryRequest {
    /// The request as a trace line, without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} 0x{:x} {}", self.cycle, self.address, if self.write { 'W' } else { 'R' })
    }
}

/// A line that is not a request, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for TraceError {}

/// Parse one line (1-based `line` for messages); `Ok(None)` for blank and comment lines.
pub fn parse_line(text: &str, line: usize) -> Result<Option<MemoryRequest>, TraceError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let mut fields = Vec::with_capacity(3);
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                fields.push((&text[s..i], s + 1));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    let err = |column: usize, message: String| TraceError { line, column, message };
    if fields.len() != 3 {
        return Err(err(1, format!("expected `<cycle> <hex address> <R|W>`, found {} fields", fields.len())));
    }
    let cycle = fields[0]
        .0
        .parse()
        .map_err(|_| err(fields[0].1, format!("expected a cycle number, found `{}`", fields[0].0)))?;
    if cycle > MAX_CYCLE {
        return Err(err(fields[0].1, format!("expected a cycle of at most {MAX_CYCLE} (2^40), found {cycle}")));
    }
    let hex = fields[1].0.trim_start_matches("0x").trim_start_matches("0X");
    let address = u64::from_str_radix(hex, 16)
        .map_err(|_| err(fields[1].1, format!("expected a hexadecimal address, found `{}`", fields[1].0)))?;
    let write = match fields[2].0 {
        "R" | "r" => false,
        "W" | "w" => true,
        other => return Err(err(fields[2].1, format!("expected R or W, found `{other}`"))),
    };
    Ok(Some(MemoryRequest { cycle, address, write }))
}

/// The latest cycle a request may name: 2^40 memory cycles, about 15
/// minutes at a 1.2 GHz command clock, so that its time in picoseconds
/// never wraps.
pub const MAX_CYCLE: u64 = 1 << 40;

/// The requests of a trace, read lazily so that traces of any length stream
/// through. Requests come in time order: a cycle before the previous
/// request's is an error.
pub fn read(reader: impl BufRead) -> impl Iterator<Item = Result<MemoryRequest, TraceError>> {
    let mut last = 0u64;
    reader.lines().enumerate().filter_map(move |(i, line)| match line {
        Ok(text) => match parse_line(&text, i + 1).transpose()? {
            Ok(r) if r.cycle < last => Some(Err(TraceError {
                line: i + 1,
                column: text.len() - text.trim_start().len() + 1,
                message: format!("cycle {} comes before the previous request's cycle {last}", r.cycle),
            })),
            Ok(r) => {
                last = r.cycle;
                Some(Ok(r))
            }
            Err(e) => Some(Err(e)),
        },
        Err(e) => Some(Err(TraceError { line: i + 1, column: 1, message: format!("cannot read the line: {e}") })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_requests_and_skips_comments() {
        let text = "# a trace\n0 0x40 R\n\n12 ff w\n";
        let requests: Vec<_> = read(text.as_bytes()).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            requests,
            [
                MemoryRequest { cycle: 0, address: 0x40, write: false },
                MemoryRequest { cycle: 12, address: 0xff, write: true }
            ]
        );
    }

    #[test]
    fn requests_print_as_the_lines_they_come_from() {
        let r = MemoryRequest { cycle: 42, address: 0xbeef00, write: true };
        assert_eq!(r.to_string(), "42 0xbeef00 W");
        assert_eq!(parse_line(&r.to_string(), 1).unwrap(), Some(r));
    }

    #[test]
    fn bad_lines_say_where() {
        let e = read("0 0x40 R\n5 0xzz R\n".as_bytes()).nth(1).unwrap().unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        let e = parse_line("1 0x40 X", 7).unwrap_err();
        assert_eq!((e.line, e.column), (7, 8));
        assert!(parse_line("1 2", 1).is_err());
        let e = read("9 0x40 R\n  5 0x80 R\n".as_bytes()).nth(1).unwrap().unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.contains("before"), "{e}");
    }
}
