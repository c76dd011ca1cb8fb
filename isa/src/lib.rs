//! # isa: the npusim NPU instruction set
//!
//! A core runs a [`Program`]: scratchpad [`Buffer`] declarations followed by
//! [`Instr`]uctions. Each instruction runs on one [`Engine`] (DMA, matrix,
//! vector, or the sequencer's sync unit); engines run in parallel, and an
//! instruction waits only for the earlier instructions it depends on through
//! buffers or fences ([`Program::dependencies`]). Programs have a text
//! assembly form ([`asm`]) and a compact binary form ([`binary`]), both
//! round-tripping, and a validator ([`Program::check`], [`asm::Assembly::check`])
//! whose errors name the instruction. isa/README.md documents every
//! instruction. This crate describes and checks programs; it simulates nothing.
//!
//! ```
//! let text = "\
//! .buffer x 7168
//! .buffer w 458752
//! .buffer y 256
//! load x, hbm:0x0, 7168
//! load w, hbm:0x100000, 458752
//! matmul y, x, w, m=1 n=64 k=7168 fp8 acc=fp32
//! store y, hbm:0x200000, 256
//! ";
//! let assembly = isa::asm::parse(text).unwrap();
//! assembly.check(4 << 20, 16).unwrap();
//! let program = &assembly.programs[0].1;
//! let waits: Vec<u32> = program.dependencies()[2].iter().map(|d| d.on).collect();
//! assert_eq!(waits, vec![0, 1]); // the matmul waits for both loads
//! assert_eq!(isa::asm::print(program).lines().count(), 7);
//! ```

pub mod asm;
pub mod binary;
mod dtype;
mod instr;
mod program;

pub use dtype::Dtype;
pub use instr::{BufId, Buffer, Engine, Instr, MemRef, Shape, VectorOp};
pub use program::{Dependency, Hazard, Program, ProgramError};
