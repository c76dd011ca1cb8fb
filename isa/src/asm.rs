//! The text assembly format: parse and print, round-trip.
//!
//! ```text
//! ; comments run from ';' or '#' to the end of the line
//! .core 0                         ; the program of core 0 (optional for a single core)
//! .buffer x 7168                  ; a scratchpad buffer of 7168 bytes, after the last one
//! .buffer w 458752 @ 8192         ; ... or at an explicit offset
//! load   x, hbm:0x0, 7168                              ; contiguous
//! load   w, hbm:0x100000, rows=64 bytes=7168 stride=8192 ; 2-D strided
//! matmul y, x, w, m=1 n=64 k=7168 fp8 acc=fp32 accumulate
//! vec.add y, y, z, 1024 bf16
//! vec.topk t, s, 192 fp32 k=8
//! vec.cvt o, y, 64 fp32 to=bf16
//! send   y, core3:0x100, 256
//! signal s0, core3
//! wait   s1, 2
//! barrier
//! doorbell 1
//! ```
//!
//! Memory operands: `hbm:ADDR`, `shared:ADDR`, `coreN:OFFSET`. Numbers are
//! decimal or `0x` hexadecimal. isa/README.md documents every instruction.

use crate::{BufId, Buffer, Dtype, Instr, MemRef, Program, ProgramError, Shape, VectorOp};
use std::fmt::{self, Write};

/// A parse or validation error at a line and column (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for AsmError {}

/// The programs of an assembly file, one per core, with where each
/// instruction came from.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Assembly {
    pub programs: Vec<(u16, Program)>,
    /// Per program, per instruction: line and column of its mnemonic.
    pub positions: Vec<Vec<(usize, usize)>>,
}

#[derive(Clone, Copy)]
struct Word<'a> {
    text: &'a str,
    column: usize,
}

fn words(line: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        let sep = c.is_whitespace() || c == ',';
        match (sep, start) {
            (true, Some(s)) => {
                out.push(Word { text: &line[s..i], column: s + 1 });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Word { text: &line[s..], column: s + 1 });
    }
    out
}

fn number(w: Word<'_>, line: usize) -> Result<u64, AsmError> {
    let t = w.text;
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => t.replace('_', "").parse(),
    };
    parsed.map_err(|_| AsmError { line, column: w.column, message: format!("expected a number, found `{t}`") })
}

fn small<T: TryFrom<u64>>(w: Word<'_>, line: usize, what: &str) -> Result<T, AsmError> {
    let v = number(w, line)?;
    T::try_from(v).map_err(|_| AsmError { line, column: w.column, message: format!("{what} {v} is out of range") })
}

struct Parser<'a> {
    line: usize,
    words: Vec<Word<'a>>,
    at: usize,
    end_column: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, column: usize, message: impl Into<String>) -> AsmError {
        AsmError { line: self.line, column, message: message.into() }
    }
    fn next(&mut self, what: &str) -> Result<Word<'a>, AsmError> {
        let w = self
            .words
            .get(self.at)
            .copied()
            .ok_or_else(|| self.err(self.end_column, format!("expected {what}, found the end of the line")))?;
        self.at += 1;
        Ok(w)
    }
    fn peek(&self) -> Option<Word<'a>> {
        self.words.get(self.at).copied()
    }
    fn done(&self) -> Result<(), AsmError> {
        match self.peek() {
            Some(w) => Err(self.err(w.column, format!("unexpected `{}`", w.text))),
            None => Ok(()),
        }
    }
    /// `key=value` options that may follow, in any order.
    fn options(&mut self) -> Vec<(Word<'a>, &'a str, Word<'a>)> {
        let mut out = Vec::new();
        while let Some(w) = self.peek() {
            let Some((k, v)) = w.text.split_once('=') else { break };
            out.push((w, k, Word { text: v, column: w.column + k.len() + 1 }));
            self.at += 1;
        }
        out
    }
}

fn dtype(w: Word<'_>, line: usize) -> Result<Dtype, AsmError> {
    w.text.parse().map_err(|m: String| AsmError { line, column: w.column, message: m })
}

fn mem(w: Word<'_>, line: usize) -> Result<MemRef, AsmError> {
    let bad = || AsmError {
        line,
        column: w.column,
        message: format!("expected hbm:ADDR, shared:ADDR or coreN:OFFSET, found `{}`", w.text),
    };
    let (space, addr) = w.text.split_once(':').ok_or_else(bad)?;
    let addr = number(Word { text: addr, column: w.column + space.len() + 1 }, line)?;
    match space {
        "hbm" => Ok(MemRef::Hbm(addr)),
        "shared" => Ok(MemRef::Shared(addr)),
        s => {
            let core = s.strip_prefix("core").and_then(|n| n.parse().ok()).ok_or_else(bad)?;
            Ok(MemRef::Core { core, offset: addr })
        }
    }
}

fn core_ref(w: Word<'_>, line: usize) -> Result<u16, AsmError> {
    w.text.strip_prefix("core").and_then(|n| n.parse().ok()).ok_or(AsmError {
        line,
        column: w.column,
        message: format!("expected a core such as `core3`, found `{}`", w.text),
    })
}

fn semaphore(w: Word<'_>, line: usize) -> Result<u8, AsmError> {
    w.text.strip_prefix('s').and_then(|n| n.parse().ok()).ok_or(AsmError {
        line,
        column: w.column,
        message: format!("expected a semaphore such as `s0` (s0 to s255), found `{}`", w.text),
    })
}

fn vector_op(name: &str) -> Option<VectorOp> {
    Some(match name {
        "add" => VectorOp::Add,
        "mul" => VectorOp::Mul,
        "fma" => VectorOp::Fma,
        "max" => VectorOp::Max,
        "sum" => VectorOp::Sum,
        "exp" => VectorOp::Exp,
        "rsqrt" => VectorOp::Rsqrt,
        "silu" => VectorOp::Silu,
        "sigmoid" => VectorOp::Sigmoid,
        "topk" => VectorOp::TopK { k: 0 },
        "cvt" => VectorOp::Convert { to: Dtype::Fp32 },
        _ => return None,
    })
}

/// Parse an assembly file.
pub fn parse(text: &str) -> Result<Assembly, AsmError> {
    let mut asm = Assembly::default();
    let mut current: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let code = raw.split([';', '#']).next().unwrap_or("");
        let words = words(code);
        let Some(&first) = words.first() else { continue };
        let mut p = Parser { line, words, at: 1, end_column: code.trim_end().len() + 1 };
        if first.text == ".core" {
            let core: u16 = small(p.next("a core number")?, line, "core")?;
            p.done()?;
            if asm.programs.iter().any(|(c, _)| *c == core) {
                return Err(p.err(first.column, format!("core {core} already has a program")));
            }
            asm.programs.push((core, Program::new()));
            asm.positions.push(Vec::new());
            current = Some(asm.programs.len() - 1);
            continue;
        }
        let index = match current {
            Some(i) => i,
            None => {
                asm.programs.push((0, Program::new()));
                asm.positions.push(Vec::new());
                current = Some(0);
                0
            }
        };
        let program = &mut asm.programs[index].1;
        if first.text == ".buffer" {
            let name = p.next("a buffer name")?;
            if program.buffers.iter().any(|b| b.name == name.text) {
                return Err(p.err(name.column, format!("buffer `{}` is declared twice", name.text)));
            }
            let bytes = number(p.next("a size in bytes")?, line)?;
            let offset = match p.peek() {
                Some(w) if w.text == "@" => {
                    p.at += 1;
                    number(p.next("an offset")?, line)?
                }
                _ => program.buffers.last().map_or(0, |b| b.offset + b.bytes),
            };
            p.done()?;
            program.buffers.push(Buffer { name: name.text.to_string(), offset, bytes });
            continue;
        }
        let instr = instruction(first, &mut p, program)?;
        p.done()?;
        program.instrs.push(instr);
        asm.positions[index].push((line, first.column));
    }
    Ok(asm)
}

fn instruction(first: Word<'_>, p: &mut Parser<'_>, program: &Program) -> Result<Instr, AsmError> {
    let line = p.line;
    let buffer = |p: &mut Parser<'_>| -> Result<BufId, AsmError> {
        let w = p.next("a buffer")?;
        program
            .buffers
            .iter()
            .position(|b| b.name == w.text)
            .map(|i| BufId(i as u16))
            .ok_or_else(|| p.err(w.column, format!("no buffer named `{}` is declared above", w.text)))
    };
    let shape = |p: &mut Parser<'_>| -> Result<Shape, AsmError> {
        if p.peek().is_some_and(|w| !w.text.contains('=')) {
            return Ok(Shape::contiguous(number(p.next("a size")?, line)?));
        }
        let (mut rows, mut bytes, mut stride) = (None, None, None);
        for (w, k, v) in p.options() {
            match k {
                "rows" => rows = Some(small::<u32>(v, line, "rows")?),
                "bytes" => bytes = Some(number(v, line)?),
                "stride" => stride = Some(number(v, line)?),
                _ => return Err(p.err(w.column, format!("unknown option `{k}`; expected rows=, bytes=, stride="))),
            }
        }
        let (Some(rows), Some(row_bytes)) = (rows, bytes) else {
            return Err(p.err(p.end_column, "expected a size, or rows= and bytes= (and stride=)"));
        };
        Ok(Shape { rows, row_bytes, stride: stride.unwrap_or(row_bytes) })
    };
    Ok(match first.text {
        "load" => {
            let dst = buffer(p)?;
            let src = mem(p.next("a memory operand")?, line)?;
            Instr::Load { dst, src, shape: shape(p)? }
        }
        "store" => {
            let src = buffer(p)?;
            let dst = mem(p.next("a memory operand")?, line)?;
            Instr::Store { src, dst, shape: shape(p)? }
        }
        "send" => {
            let src = buffer(p)?;
            let target = p.next("a core and offset such as core3:0x0")?;
            let MemRef::Core { core, offset } = mem(target, line)? else {
                return Err(p.err(target.column, "send writes into another core's scratchpad: expected coreN:OFFSET"));
            };
            let bytes = number(p.next("a size")?, line)?;
            Instr::Send { src, core, offset, bytes }
        }
        "matmul" => {
            let c = buffer(p)?;
            let a = buffer(p)?;
            let b = buffer(p)?;
            let (mut m, mut n, mut k, mut acc) = (None, None, None, Dtype::Fp32);
            let mut dt = None;
            let mut accumulate = false;
            while let Some(w) = p.peek() {
                if let Some((key, v)) = w.text.split_once('=') {
                    let v = Word { text: v, column: w.column + key.len() + 1 };
                    match key {
                        "m" => m = Some(small::<u32>(v, line, "m")?),
                        "n" => n = Some(small::<u32>(v, line, "n")?),
                        "k" => k = Some(small::<u32>(v, line, "k")?),
                        "acc" => acc = dtype(v, line)?,
                        _ => return Err(p.err(w.column, format!("unknown option `{key}`; expected m=, n=, k=, acc="))),
                    }
                } else if w.text == "accumulate" {
                    accumulate = true;
                } else {
                    dt = Some(dtype(w, line)?);
                }
                p.at += 1;
            }
            let (Some(m), Some(n), Some(k), Some(dtype)) = (m, n, k, dt) else {
                return Err(p.err(p.end_column, "a matmul needs m=, n=, k= and an input dtype"));
            };
            Instr::MatMul { c, a, b, m, n, k, dtype, acc, accumulate }
        }
        "signal" => {
            let sem = semaphore(p.next("a semaphore")?, line)?;
            let core = p.peek().map(|w| core_ref(w, line)).transpose()?;
            if core.is_some() {
                p.at += 1;
            }
            Instr::Signal { sem, core }
        }
        "wait" => {
            let sem = semaphore(p.next("a semaphore")?, line)?;
            let count = match p.peek() {
                Some(w) => {
                    p.at += 1;
                    small::<u32>(w, line, "count")?
                }
                None => 1,
            };
            Instr::Wait { sem, count }
        }
        "barrier" => Instr::Barrier,
        "doorbell" => Instr::Doorbell { value: small::<u32>(p.next("a value")?, line, "value")? },
        other => {
            let Some(mut op) = other.strip_prefix("vec.").and_then(vector_op) else {
                return Err(p.err(first.column, format!("unknown instruction `{other}`; see isa/README.md")));
            };
            let dst = buffer(p)?;
            let src = buffer(p)?;
            let src2 = match p.peek() {
                Some(w) if w.text.parse::<u64>().is_err() && !w.text.starts_with("0x") => Some(buffer(p)?),
                _ => None,
            };
            let elems = number(p.next("an element count")?, line)?;
            let dtype = dtype(p.next("a dtype")?, line)?;
            for (w, k, v) in p.options() {
                match (k, &mut op) {
                    ("k", VectorOp::TopK { k }) => *k = small(v, line, "k")?,
                    ("to", VectorOp::Convert { to }) => *to = self::dtype(v, line)?,
                    _ => return Err(p.err(w.column, format!("unknown option `{k}` for vec.{}", op.name()))),
                }
            }
            if matches!(op, VectorOp::TopK { k: 0 }) {
                return Err(p.err(p.end_column, "vec.topk needs k="));
            }
            Instr::Vector { op, dst, src, src2, elems, dtype }
        }
    })
}

fn shape_text(shape: Shape) -> String {
    if shape.rows == 1 && shape.stride == shape.row_bytes {
        shape.row_bytes.to_string()
    } else {
        format!("rows={} bytes={} stride={}", shape.rows, shape.row_bytes, shape.stride)
    }
}

/// Print one instruction in assembly, naming buffers from `program`.
pub fn instruction_text(program: &Program, instr: &Instr) -> String {
    let name = |b: BufId| program.buffers.get(b.0 as usize).map_or_else(|| format!("#{}", b.0), |x| x.name.clone());
    match *instr {
        Instr::Load { dst, src, shape } => format!("load {}, {src}, {}", name(dst), shape_text(shape)),
        Instr::Store { src, dst, shape } => format!("store {}, {dst}, {}", name(src), shape_text(shape)),
        Instr::Send { src, core, offset, bytes } => format!("send {}, core{core}:{offset:#x}, {bytes}", name(src)),
        Instr::MatMul { c, a, b, m, n, k, dtype, acc, accumulate } => format!(
            "matmul {}, {}, {}, m={m} n={n} k={k} {dtype} acc={acc}{}",
            name(c),
            name(a),
            name(b),
            if accumulate { " accumulate" } else { "" }
        ),
        Instr::Vector { op, dst, src, src2, elems, dtype } => {
            let mut s = format!("vec.{} {}, {}", op.name(), name(dst), name(src));
            if let Some(s2) = src2 {
                let _ = write!(s, ", {}", name(s2));
            }
            let _ = write!(s, ", {elems} {dtype}");
            match op {
                VectorOp::TopK { k } => {
                    let _ = write!(s, " k={k}");
                }
                VectorOp::Convert { to } => {
                    let _ = write!(s, " to={to}");
                }
                _ => {}
            }
            s
        }
        Instr::Signal { sem, core: Some(c) } => format!("signal s{sem}, core{c}"),
        Instr::Signal { sem, core: None } => format!("signal s{sem}"),
        Instr::Wait { sem, count } => format!("wait s{sem}, {count}"),
        Instr::Barrier => "barrier".to_string(),
        Instr::Doorbell { value } => format!("doorbell {value}"),
    }
}

/// Print a program in assembly (buffers with explicit offsets, then instructions).
pub fn print(program: &Program) -> String {
    let mut s = String::new();
    for b in &program.buffers {
        let _ = writeln!(s, ".buffer {} {} @ {}", b.name, b.bytes, b.offset);
    }
    for instr in &program.instrs {
        let _ = writeln!(s, "{}", instruction_text(program, instr));
    }
    s
}

/// Print several cores' programs, each under its `.core` directive.
pub fn print_assembly(programs: &[(u16, Program)]) -> String {
    let mut s = String::new();
    for (core, program) in programs {
        let _ = writeln!(s, ".core {core}");
        s.push_str(&print(program));
    }
    s
}

impl Assembly {
    /// Check every program against a scratchpad of `scratchpad` bytes;
    /// errors point at the offending instruction (or buffer declaration's program).
    /// Checks each program against a scratchpad of `scratchpad` bytes, and
    /// its `.core` and the cores its sends and signals name against a
    /// chiplet of `cores` cores.
    pub fn check(&self, scratchpad: u64, cores: u32) -> Result<(), AsmError> {
        for ((core, program), positions) in self.programs.iter().zip(&self.positions) {
            let at = |i: usize| positions.get(i).copied().unwrap_or((1, 1));
            let beyond = |c: u16| u32::from(c) >= cores;
            let range = format!("the chiplet has {cores} cores, 0 to {}", cores.saturating_sub(1));
            if beyond(*core) {
                let (line, column) = at(0);
                return Err(AsmError { line, column, message: format!("`.core {core}`: {range}") });
            }
            let named = program.instrs.iter().enumerate().find_map(|(i, instr)| match *instr {
                Instr::Send { core: c, .. } | Instr::Signal { core: Some(c), .. } if beyond(c) => Some((i, c)),
                _ => None,
            });
            if let Some((i, c)) = named {
                let (line, column) = at(i);
                let what = instruction_text(program, &program.instrs[i]);
                return Err(AsmError {
                    line,
                    column,
                    message: format!("core {core}: `{what}` names core {c}: {range}"),
                });
            }
            if let Err(e) = program.check(scratchpad) {
                let (line, column) = e.instr().and_then(|i| positions.get(i).copied()).unwrap_or((1, 1));
                let what = e
                    .instr()
                    .map(|i| format!("`{}`: ", instruction_text(program, &program.instrs[i])))
                    .unwrap_or_default();
                return Err(AsmError { line, column, message: format!("core {core}: {what}{}", describe(&e)) });
            }
        }
        Ok(())
    }
}

fn describe(e: &ProgramError) -> String {
    match e {
        ProgramError::BufferOverrun { buffer, bytes, capacity, .. } => {
            format!("needs {bytes} bytes of buffer `{buffer}`, which holds {capacity}")
        }
        ProgramError::BadOperand { problem, .. } => problem.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "\
; y = x . W on one core
.buffer x 7168
.buffer w 458752
.buffer y 256
load x, hbm:0x0, 7168
load w, hbm:0x100000, rows=64 bytes=7168 stride=8192
matmul y, x, w, m=1 n=64 k=7168 fp8 acc=fp32
vec.cvt y, y, 64 fp32 to=bf16
store y, hbm:0x200000, 128
send y, core3:0x40, 128
signal s0, core3
wait s1, 2
barrier
doorbell 7
";

    #[test]
    fn parses_and_prints_round_trip() {
        let asm = parse(EXAMPLE).unwrap();
        assert_eq!(asm.programs.len(), 1);
        let program = &asm.programs[0].1;
        assert_eq!(program.instrs.len(), 10);
        assert_eq!(asm.positions[0][0], (5, 1));
        let printed = print(program);
        let again = parse(&printed).unwrap();
        assert_eq!(&again.programs[0].1, program);
        assert_eq!(print(&again.programs[0].1), printed);
    }

    #[test]
    fn errors_point_at_the_word() {
        let e = parse(".buffer x 64\nload x, hbm:0x0, 64\nmatmul y, x, x, m=1 n=1 k=1 fp8\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 8));
        assert!(e.message.contains("no buffer named `y`"), "{e}");
        let e = parse("load x\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse(".buffer x 64\nfrobnicate x\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        let e = parse(".buffer x 64\nload x, dram:0x0, 64\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 9));
        let e = parse(".buffer x 64\nvec.topk x, x, 64 fp32\n").unwrap_err();
        assert!(e.message.contains("k="), "{e}");
    }

    #[test]
    fn overflowing_the_scratchpad_names_the_instruction() {
        let asm = parse(".buffer x 1024\nload x, hbm:0x0, 4096\n").unwrap();
        let e = asm.check(1 << 20, 16).unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("`load x, hbm:0x0, 4096`: needs 4096 bytes of buffer `x`, which holds 1024"), "{e}");
        let e = asm.check(512, 16).unwrap_err();
        assert!(e.message.contains("past the scratchpad"), "{e}");
    }

    #[test]
    fn several_cores() {
        let asm = parse(".core 0\n.buffer a 8\nsignal s0, core1\n.core 1\n.buffer a 8\nwait s0\n").unwrap();
        assert_eq!(asm.programs.iter().map(|(c, p)| (*c, p.instrs.len())).collect::<Vec<_>>(), [(0, 1), (1, 1)]);
        let printed = print_assembly(&asm.programs);
        assert_eq!(parse(&printed).unwrap().programs, asm.programs);
        assert!(parse(".core 0\n.core 0\n").is_err());
    }
}
