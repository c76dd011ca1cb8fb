//! # isa: the npusim NPU instruction set
//!
//! A core runs a [`Program`]: scratchpad [`Buffer`] declarations followed by
//! [`Instr`]uctions. Each instruction runs on one engine (DMA, matrix or
//! vector); engines run in parallel, and an instruction waits only for the
//! earlier instructions whose buffers it depends on
//! ([`Program::dependencies`]). This crate describes and checks programs; it
//! simulates nothing.
//!
//! ```
//! use isa::{Dtype, Instr, Program};
//!
//! let mut p = Program::new();
//! let x = p.buffer(7168);
//! let w = p.buffer(7168 * 64);
//! let y = p.buffer(64 * 4);
//! p.push(Instr::Load { dst: x, addr: 0, bytes: 7168 });
//! p.push(Instr::Load { dst: w, addr: 1 << 20, bytes: 7168 * 64 });
//! p.push(Instr::MatMul { a: x, b: w, c: y, m: 1, n: 64, k: 7168, dtype: Dtype::Fp8, acc: Dtype::Fp32, accumulate: false });
//! assert!(p.check(1 << 20).is_ok());
//! assert_eq!(p.dependencies()[2], vec![0, 1]);
//! ```

mod dtype;
mod instr;
mod program;

pub use dtype::Dtype;
pub use instr::{BufId, Buffer, Engine, Instr, VectorOp};
pub use program::{Program, ProgramError};
