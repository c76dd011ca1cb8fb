//! A program for one core: its scratchpad buffers and its instructions, the
//! static checks a program must pass, and the dependencies between its
//! instructions.

use crate::{BufId, Buffer, Dtype, Instr, MemRef, VectorOp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why one instruction waits for an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hazard {
    /// It needs the earlier one's results (read after write, write after
    /// write, or a fence): it waits until they are visible.
    Result,
    /// It overwrites a buffer the earlier one reads (write after read): it
    /// waits only until the earlier one has finished reading.
    Reads,
}

/// An earlier instruction that one depends on, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dependency {
    pub on: u32,
    pub hazard: Hazard,
}

/// A core program: buffer declarations and instructions in program order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub buffers: Vec<Buffer>,
    pub instrs: Vec<Instr>,
}

/// A static error in a program. `instr` is the index of the offending instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgramError {
    /// An instruction names a buffer the program does not declare.
    UnknownBuffer { instr: usize, buffer: BufId },
    /// A buffer extends past the end of the scratchpad.
    ScratchpadOverflow { buffer: String, end: u64, capacity: u64 },
    /// Two buffers share bytes.
    Overlap { first: String, second: String },
    /// An instruction touches more bytes of a buffer than it holds.
    BufferOverrun { instr: usize, buffer: String, bytes: u64, capacity: u64 },
    /// An operand that must be non-zero is zero, or a shape is inconsistent.
    BadOperand { instr: usize, problem: String },
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgramError::UnknownBuffer { instr, buffer } => {
                write!(f, "instruction {instr} names buffer #{} that the program does not declare", buffer.0)
            }
            ProgramError::ScratchpadOverflow { buffer, end, capacity } => {
                write!(f, "buffer `{buffer}` ends at byte {end}, past the scratchpad's {capacity} bytes")
            }
            ProgramError::Overlap { first, second } => write!(f, "buffers `{first}` and `{second}` overlap"),
            ProgramError::BufferOverrun { instr, buffer, bytes, capacity } => {
                write!(f, "instruction {instr} needs {bytes} bytes of buffer `{buffer}`, which holds {capacity}")
            }
            ProgramError::BadOperand { instr, problem } => write!(f, "instruction {instr}: {problem}"),
        }
    }
}

impl std::error::Error for ProgramError {}

impl ProgramError {
    /// The index of the instruction at fault, if the error is about one.
    pub fn instr(&self) -> Option<usize> {
        match *self {
            ProgramError::UnknownBuffer { instr, .. }
            | ProgramError::BufferOverrun { instr, .. }
            | ProgramError::BadOperand { instr, .. } => Some(instr),
            _ => None,
        }
    }
}

impl Program {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare a buffer of `bytes` placed after the last one, named `b<index>`.
    pub fn buffer(&mut self, bytes: u64) -> BufId {
        let name = format!("b{}", self.buffers.len());
        self.named_buffer(name, bytes)
    }

    /// Declare a named buffer of `bytes` placed after the last one.
    pub fn named_buffer(&mut self, name: impl Into<String>, bytes: u64) -> BufId {
        let offset = self.buffers.last().map_or(0, |b| b.offset + b.bytes);
        let id = BufId(u16::try_from(self.buffers.len()).expect("at most 65,536 buffers per program"));
        self.buffers.push(Buffer { name: name.into(), offset, bytes });
        id
    }

    /// Declare a named buffer of `bytes` at `offset` (in the accumulators
    /// that follow the scratchpad, say); later buffers are placed after it.
    pub fn buffer_at(&mut self, name: impl Into<String>, offset: u64, bytes: u64) -> BufId {
        let id = BufId(u16::try_from(self.buffers.len()).expect("at most 65,536 buffers per program"));
        self.buffers.push(Buffer { name: name.into(), offset, bytes });
        id
    }

    pub fn push(&mut self, instr: Instr) -> usize {
        self.instrs.push(instr);
        self.instrs.len() - 1
    }

    /// Scratchpad bytes the program's buffers span.
    pub fn scratchpad_bytes(&self) -> u64 {
        self.buffers.iter().map(|b| b.offset + b.bytes).max().unwrap_or(0)
    }

    /// Check that buffers fit the `scratchpad` bytes without overlapping, that
    /// every instruction names declared buffers, and that each touches no more
    /// of a buffer than it holds.
    pub fn check(&self, scratchpad: u64) -> Result<(), ProgramError> {
        for b in &self.buffers {
            if b.offset + b.bytes > scratchpad {
                return Err(ProgramError::ScratchpadOverflow {
                    buffer: b.name.clone(),
                    end: b.offset + b.bytes,
                    capacity: scratchpad,
                });
            }
        }
        let mut spans: Vec<&Buffer> = self.buffers.iter().filter(|b| b.bytes > 0).collect();
        spans.sort_by_key(|b| b.offset);
        for pair in spans.windows(2) {
            if pair[0].offset + pair[0].bytes > pair[1].offset {
                return Err(ProgramError::Overlap { first: pair[0].name.clone(), second: pair[1].name.clone() });
            }
        }
        for (i, instr) in self.instrs.iter().enumerate() {
            for buffer in instr.reads().chain(instr.writes()) {
                if buffer.0 as usize >= self.buffers.len() {
                    return Err(ProgramError::UnknownBuffer { instr: i, buffer });
                }
            }
            for (buffer, bytes) in self.footprint(instr) {
                let b = &self.buffers[buffer.0 as usize];
                if bytes > b.bytes {
                    return Err(ProgramError::BufferOverrun {
                        instr: i,
                        buffer: b.name.clone(),
                        bytes,
                        capacity: b.bytes,
                    });
                }
            }
            if let Some(problem) = bad_operand(instr) {
                return Err(ProgramError::BadOperand { instr: i, problem });
            }
        }
        Ok(())
    }

    /// The bytes of each buffer an instruction touches.
    fn footprint(&self, instr: &Instr) -> Vec<(BufId, u64)> {
        match *instr {
            Instr::Load { dst: b, shape, .. } | Instr::Store { src: b, shape, .. } => vec![(b, shape.bytes())],
            Instr::Send { src, bytes, .. } => vec![(src, bytes)],
            // Saturating: a size past u64 is past any scratchpad, which the check then says.
            Instr::MatMul { a, b, c, m, n, k, dtype, acc, .. } => {
                let size = |x: u32, y: u32, d: Dtype| (x as u64).saturating_mul(y as u64).saturating_mul(d.bytes());
                vec![(a, size(m, k, dtype)), (b, size(k, n, dtype)), (c, size(m, n, acc))]
            }
            Instr::Vector { op, dst, src, src2, elems, dtype } => {
                let out = match op {
                    VectorOp::Sum | VectorOp::Max => dtype.bytes(),
                    VectorOp::TopK { k } => k as u64 * 8,
                    VectorOp::Convert { to } => elems.saturating_mul(to.bytes()),
                    _ => elems.saturating_mul(dtype.bytes()),
                };
                let mut f = vec![(src, elems.saturating_mul(dtype.bytes())), (dst, out)];
                f.extend(src2.map(|s| (s, elems.saturating_mul(dtype.bytes()))));
                f
            }
            _ => Vec::new(),
        }
    }

    /// For each instruction, the earlier instructions it must wait for:
    ///
    /// - through buffers: the last writer of each buffer it reads (read after
    ///   write), and the last writer of, and the readers since, the buffer it
    ///   writes (write after write, write after read) — except that a matrix
    ///   multiply accumulating into the output of the matrix multiply before
    ///   it does not wait for it: the matrix engine runs in order and its
    ///   accumulators take successive partial sums as they come;
    /// - through fences: signals, barriers and doorbells wait for every
    ///   earlier instruction; every instruction waits for the last wait or
    ///   barrier before it.
    ///
    /// Instructions on the same engine also run in program order.
    pub fn dependencies(&self) -> Vec<Vec<Dependency>> {
        let n = self.buffers.len();
        let mut last_writer: Vec<Option<u32>> = vec![None; n];
        let mut readers_since: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut last_fence: Option<u32> = None;
        let mut since_fence: Vec<u32> = Vec::new();
        let mut deps = Vec::with_capacity(self.instrs.len());
        let is_matmul = |i: u32| matches!(self.instrs[i as usize], Instr::MatMul { .. });
        let result = |on| Dependency { on, hazard: Hazard::Result };
        for (i, instr) in self.instrs.iter().enumerate() {
            let i = i as u32;
            let mut d: Vec<Dependency> = Vec::new();
            let chained = |b: BufId| matches!(instr, Instr::MatMul { c, accumulate: true, .. } if *c == b);
            for b in instr.reads() {
                if let Some(w) = last_writer.get(b.0 as usize).copied().flatten()
                    && !(chained(b) && is_matmul(w))
                {
                    d.push(result(w));
                }
            }
            if let Some(b) = instr.writes() {
                let bi = b.0 as usize;
                if let Some(w) = last_writer.get(bi).copied().flatten()
                    && !(chained(b) && is_matmul(w))
                {
                    d.push(result(w));
                }
                let readers = readers_since.get(bi).into_iter().flatten().copied().filter(|&r| r != i);
                d.extend(readers.map(|on| Dependency { on, hazard: Hazard::Reads }));
            }
            d.extend(last_fence.map(result));
            if instr.fences_earlier() {
                d.extend(since_fence.iter().copied().map(result));
            }
            // One entry per earlier instruction, the stronger hazard winning.
            d.sort_unstable();
            d.dedup_by_key(|x| x.on);
            for b in instr.reads() {
                if let Some(r) = readers_since.get_mut(b.0 as usize) {
                    r.push(i);
                }
            }
            if let Some(b) = instr.writes()
                && (b.0 as usize) < n
            {
                last_writer[b.0 as usize] = Some(i);
                readers_since[b.0 as usize].clear();
            }
            if instr.fences_later() {
                last_fence = Some(i);
                since_fence.clear();
            } else {
                since_fence.push(i);
            }
            deps.push(d);
        }
        deps
    }
}

fn bad_operand(instr: &Instr) -> Option<String> {
    match *instr {
        Instr::MatMul { m, n, k, .. } if m == 0 || n == 0 || k == 0 => {
            Some(format!("a matmul needs m, n, k of at least 1, found {m}x{n}x{k}"))
        }
        Instr::MatMul { acc, .. } if !matches!(acc, Dtype::Fp32 | Dtype::Int32 | Dtype::Bf16 | Dtype::Fp16) => {
            Some(format!("a matmul accumulates in fp32, int32, bf16 or fp16, not {acc}"))
        }
        Instr::Load { shape, .. } | Instr::Store { shape, .. } if shape.rows > 1 && shape.stride < shape.row_bytes => {
            Some(format!("rows of {} bytes cannot sit {} bytes apart", shape.row_bytes, shape.stride))
        }
        Instr::Load { src: MemRef::Core { .. }, .. } | Instr::Store { dst: MemRef::Core { .. }, .. } => None,
        Instr::Vector { op: VectorOp::TopK { k }, elems, .. } if k == 0 || k as u64 > elems => {
            Some(format!("top-k needs k from 1 to the {elems} elements, found {k}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dtype, VectorOp};

    fn double_buffered() -> Program {
        let mut p = Program::new();
        let x = p.named_buffer("x", 1024);
        let w = [p.named_buffer("w0", 4096), p.named_buffer("w1", 4096)];
        let y = p.named_buffer("y", 1024);
        p.push(Instr::load(x, 0, 64));
        for t in 0..4 {
            let wb = w[t % 2];
            p.push(Instr::load(wb, 4096 * t as u64, 4096));
            p.push(Instr::MatMul {
                c: y,
                a: x,
                b: wb,
                m: 1,
                n: 64,
                k: 64,
                dtype: Dtype::Fp8,
                acc: Dtype::Fp32,
                accumulate: t > 0,
            });
        }
        p.push(Instr::Vector {
            op: VectorOp::Convert { to: Dtype::Bf16 },
            dst: y,
            src: y,
            src2: None,
            elems: 64,
            dtype: Dtype::Fp32,
        });
        p.push(Instr::store(y, 1 << 20, 128));
        p
    }

    fn on(deps: &[Dependency]) -> Vec<u32> {
        deps.iter().map(|d| d.on).collect()
    }

    #[test]
    fn dependencies_follow_buffers() {
        let all = double_buffered().dependencies();
        let deps: Vec<Vec<u32>> = all.iter().map(|d| on(d)).collect();
        // Reusing w0 needs only the matmul that read it to have read it.
        assert_eq!(all[5][1], Dependency { on: 2, hazard: Hazard::Reads });
        assert_eq!(deps[0], Vec::<u32>::new()); // load x
        assert_eq!(deps[2], vec![0, 1]); // first matmul waits for x and w0
        // The third weight load reuses w0: it waits for the load before it and the matmul reading it.
        assert_eq!(deps[5], vec![1, 2]);
        // The second matmul accumulates into the first's output without waiting for it.
        assert_eq!(deps[4], vec![0, 3]);
        assert_eq!(deps[9], vec![8]); // conversion waits for the last matmul
        assert_eq!(deps[10], vec![9]); // store waits for the conversion
    }

    #[test]
    fn fences_order_everything_around_them() {
        let mut p = Program::new();
        let a = p.buffer(64);
        let b = p.buffer(64);
        p.push(Instr::load(a, 0, 64)); // 0
        p.push(Instr::load(b, 64, 64)); // 1
        p.push(Instr::Signal { sem: 0, core: Some(1) }); // 2: after both loads
        p.push(Instr::Wait { sem: 1, count: 1 }); // 3
        p.push(Instr::store(a, 128, 64)); // 4: after the wait
        p.push(Instr::Doorbell { value: 1 }); // 5: after everything since the wait
        let deps: Vec<Vec<u32>> = p.dependencies().iter().map(|d| on(d)).collect();
        assert_eq!(deps[2], vec![0, 1]);
        assert_eq!(deps[3], Vec::<u32>::new());
        assert_eq!(deps[4], vec![0, 3]);
        assert_eq!(deps[5], vec![3, 4]);
    }

    #[test]
    fn overflows_overruns_and_unknown_buffers_are_caught() {
        let p = double_buffered();
        assert!(p.check(1 << 20).is_ok());
        assert!(matches!(p.check(4096), Err(ProgramError::ScratchpadOverflow { .. })));
        let mut bad = p.clone();
        bad.push(Instr::store(BufId(9), 0, 1));
        assert!(matches!(bad.check(1 << 20), Err(ProgramError::UnknownBuffer { instr: 11, .. })));
        let mut bad = p.clone();
        bad.push(Instr::load(BufId(0), 0, 2048));
        assert_eq!(bad.check(1 << 20).unwrap_err().instr(), Some(11));
        let mut bad = p;
        bad.buffers[1].offset = 512;
        assert!(matches!(bad.check(1 << 20), Err(ProgramError::Overlap { .. })));
    }
}
