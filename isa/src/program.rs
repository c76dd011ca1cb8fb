//! A program for one core: its scratchpad buffers and its instructions, and
//! the dependencies between instructions implied by the buffers they share.

use crate::{BufId, Buffer, Instr};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A core program: buffer declarations and instructions in program order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub buffers: Vec<Buffer>,
    pub instrs: Vec<Instr>,
}

/// A static error in a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgramError {
    /// An instruction names a buffer the program does not declare.
    UnknownBuffer { instr: usize, buffer: BufId },
    /// Buffers extend past the end of the scratchpad.
    ScratchpadOverflow { buffer: BufId, end: u64, capacity: u64 },
    /// An instruction moves more bytes than its buffer holds.
    BufferOverrun { instr: usize, buffer: BufId, bytes: u64, capacity: u64 },
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgramError::UnknownBuffer { instr, buffer } => {
                write!(f, "instruction {instr} names buffer b{} that the program does not declare", buffer.0)
            }
            ProgramError::ScratchpadOverflow { buffer, end, capacity } => {
                write!(f, "buffer b{} ends at byte {end}, past the scratchpad's {capacity} bytes", buffer.0)
            }
            ProgramError::BufferOverrun { instr, buffer, bytes, capacity } => {
                write!(f, "instruction {instr} moves {bytes} bytes through buffer b{} of {capacity} bytes", buffer.0)
            }
        }
    }
}

impl std::error::Error for ProgramError {}

impl Program {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare a buffer of `bytes` placed after the last one; returns its id.
    pub fn buffer(&mut self, bytes: u64) -> BufId {
        let offset = self.buffers.last().map_or(0, |b| b.offset + b.bytes);
        let id = BufId(u16::try_from(self.buffers.len()).expect("at most 65,536 buffers per program"));
        self.buffers.push(Buffer { offset, bytes });
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

    /// Check buffer references and that every buffer fits in `scratchpad` bytes.
    pub fn check(&self, scratchpad: u64) -> Result<(), ProgramError> {
        for (i, b) in self.buffers.iter().enumerate() {
            if b.offset + b.bytes > scratchpad {
                let buffer = BufId(i as u16);
                return Err(ProgramError::ScratchpadOverflow { buffer, end: b.offset + b.bytes, capacity: scratchpad });
            }
        }
        for (i, instr) in self.instrs.iter().enumerate() {
            for buffer in instr.reads().chain(instr.writes()) {
                if buffer.0 as usize >= self.buffers.len() {
                    return Err(ProgramError::UnknownBuffer { instr: i, buffer });
                }
            }
            if let Instr::Load { dst: buffer, bytes, .. } | Instr::Store { src: buffer, bytes, .. } = *instr {
                let capacity = self.buffers[buffer.0 as usize].bytes;
                if bytes > capacity {
                    return Err(ProgramError::BufferOverrun { instr: i, buffer, bytes, capacity });
                }
            }
        }
        Ok(())
    }

    /// For each instruction, the earlier instructions it must wait for: the
    /// last writer of each buffer it reads (read after write), and the last
    /// writer and the readers since of the buffer it writes (write after write,
    /// write after read). Instructions on the same engine also run in order.
    pub fn dependencies(&self) -> Vec<Vec<u32>> {
        let n = self.buffers.len();
        let mut last_writer: Vec<Option<u32>> = vec![None; n];
        let mut readers_since: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut deps = Vec::with_capacity(self.instrs.len());
        for (i, instr) in self.instrs.iter().enumerate() {
            let i = i as u32;
            let mut d: Vec<u32> = Vec::new();
            for b in instr.reads() {
                d.extend(last_writer[b.0 as usize]);
            }
            if let Some(b) = instr.writes() {
                d.extend(last_writer[b.0 as usize]);
                d.extend(readers_since[b.0 as usize].iter().copied().filter(|&r| r != i));
            }
            d.sort_unstable();
            d.dedup();
            for b in instr.reads() {
                readers_since[b.0 as usize].push(i);
            }
            if let Some(b) = instr.writes() {
                last_writer[b.0 as usize] = Some(i);
                readers_since[b.0 as usize].clear();
            }
            deps.push(d);
        }
        deps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dtype, VectorOp};

    fn double_buffered() -> Program {
        let mut p = Program::new();
        let x = p.buffer(1024);
        let w = [p.buffer(4096), p.buffer(4096)];
        let y = p.buffer(1024);
        p.push(Instr::Load { dst: x, addr: 0, bytes: 1024 });
        for t in 0..4 {
            let wb = w[t % 2];
            p.push(Instr::Load { dst: wb, addr: 4096 * t as u64, bytes: 4096 });
            p.push(Instr::MatMul {
                a: x,
                b: wb,
                c: y,
                m: 1,
                n: 64,
                k: 64,
                dtype: Dtype::Fp8,
                acc: Dtype::Fp32,
                accumulate: t > 0,
            });
        }
        p.push(Instr::Vector { op: VectorOp::Convert, src: y, src2: None, dst: y, elems: 64, dtype: Dtype::Fp32 });
        p.push(Instr::Store { src: y, addr: 1 << 20, bytes: 128 });
        p
    }

    #[test]
    fn dependencies_follow_buffers() {
        let deps = double_buffered().dependencies();
        assert_eq!(deps[0], Vec::<u32>::new()); // load x
        assert_eq!(deps[2], vec![0, 1]); // first matmul waits for x and w0
        // The third weight load reuses w0: it waits for the load before it and the matmul reading it.
        assert_eq!(deps[5], vec![1, 2]);
        assert_eq!(deps[4], vec![0, 2, 3]); // second matmul: x, y (accumulate), w1
        assert_eq!(deps[9], vec![8]); // store waits for the conversion
    }

    #[test]
    fn overflow_and_unknown_buffers_are_caught() {
        let p = double_buffered();
        assert!(p.check(1 << 20).is_ok());
        assert!(matches!(p.check(4096), Err(ProgramError::ScratchpadOverflow { .. })));
        let mut bad = p.clone();
        bad.push(Instr::Store { src: BufId(9), addr: 0, bytes: 1 });
        assert!(matches!(bad.check(1 << 20), Err(ProgramError::UnknownBuffer { instr: 11, .. })));
    }
}
