//! Instructions, the memory they name, and the scratchpad buffers they use.

use crate::Dtype;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A named region of a core's scratchpad, by index in the program's buffer list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BufId(pub u16);

/// A scratchpad region: `bytes` long starting at byte `offset`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffer {
    pub name: String,
    pub offset: u64,
    pub bytes: u64,
}

/// Memory outside the core's scratchpad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemRef {
    /// The chiplet's device memory (HBM), at a byte address.
    Hbm(u64),
    /// The chiplet's shared on-chip SRAM, at a byte offset.
    Shared(u64),
    /// Another core's scratchpad on the same chiplet, at a byte offset.
    Core { core: u16, offset: u64 },
}

/// The layout of a DMA transfer in the memory outside the scratchpad: `rows`
/// rows of `row_bytes`, successive rows `stride` bytes apart (the scratchpad
/// side is always contiguous).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    pub rows: u32,
    pub row_bytes: u64,
    pub stride: u64,
}

impl Shape {
    pub const fn contiguous(bytes: u64) -> Shape {
        Shape { rows: 1, row_bytes: bytes, stride: bytes }
    }
    pub const fn bytes(self) -> u64 {
        self.rows as u64 * self.row_bytes
    }
    pub const fn is_contiguous(self) -> bool {
        self.rows <= 1 || self.stride == self.row_bytes
    }
}

/// Element-wise and reduction operations of the vector engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VectorOp {
    Add,
    Mul,
    /// Fused multiply-add of three operands (the destination is the third).
    Fma,
    Max,
    /// Sum reduction.
    Sum,
    Exp,
    Rsqrt,
    /// x * sigmoid(x), the gate of SwiGLU.
    Silu,
    Sigmoid,
    /// Selection of the largest `k` values (router top-k, sampling).
    TopK {
        k: u32,
    },
    /// Type conversion from the instruction's dtype to `to`.
    Convert {
        to: Dtype,
    },
}

impl VectorOp {
    /// Transcendental ops take the vector engine's transcendental cost per element.
    pub const fn is_transcendental(self) -> bool {
        matches!(self, VectorOp::Exp | VectorOp::Rsqrt | VectorOp::Silu | VectorOp::Sigmoid)
    }

    /// The assembly mnemonic, without the `vec.` prefix.
    pub const fn name(self) -> &'static str {
        match self {
            VectorOp::Add => "add",
            VectorOp::Mul => "mul",
            VectorOp::Fma => "fma",
            VectorOp::Max => "max",
            VectorOp::Sum => "sum",
            VectorOp::Exp => "exp",
            VectorOp::Rsqrt => "rsqrt",
            VectorOp::Silu => "silu",
            VectorOp::Sigmoid => "sigmoid",
            VectorOp::TopK { .. } => "topk",
            VectorOp::Convert { .. } => "cvt",
        }
    }
}

/// One instruction. Each runs on one engine of the core ([`Instr::engine`]).
/// Between engines, an instruction waits for the earlier instructions whose
/// buffers it depends on, and for synchronisation fences (see
/// [`crate::Program::dependencies`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Instr {
    /// Copy from memory into buffer `dst`.
    Load { dst: BufId, src: MemRef, shape: Shape },
    /// Copy buffer `src` out to memory.
    Store { src: BufId, dst: MemRef, shape: Shape },
    /// Copy `bytes` of buffer `src` into core `core`'s scratchpad at `offset`, over the chiplet's mesh.
    Send { src: BufId, core: u16, offset: u64, bytes: u64 },
    /// `c (+)= a[m×k] · b[k×n]`: inputs in `dtype`, accumulating in `acc`.
    MatMul { c: BufId, a: BufId, b: BufId, m: u32, n: u32, k: u32, dtype: Dtype, acc: Dtype, accumulate: bool },
    /// `dst = op(src, src2)` over `elems` elements of `dtype`.
    Vector { op: VectorOp, dst: BufId, src: BufId, src2: Option<BufId>, elems: u64, dtype: Dtype },
    /// Increment semaphore `sem` of this core, or of core `core`, once every earlier instruction has retired.
    Signal { sem: u8, core: Option<u16> },
    /// Wait until semaphore `sem` reaches `count`, then take `count` from it; later instructions wait for this.
    Wait { sem: u8, count: u32 },
    /// Wait until every core running this launch reaches its barrier; a fence both ways.
    Barrier,
    /// Tell the host `value` once every earlier instruction has retired.
    Doorbell { value: u32 },
}

/// Which engine of a core runs an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Engine {
    Dma,
    Matrix,
    Vector,
    /// The sequencer itself: semaphores, barriers, doorbells.
    Sync,
}

impl Engine {
    pub const ALL: [Engine; 4] = [Engine::Dma, Engine::Matrix, Engine::Vector, Engine::Sync];
    pub const fn index(self) -> usize {
        self as usize
    }
    pub const fn name(self) -> &'static str {
        match self {
            Engine::Dma => "dma",
            Engine::Matrix => "matrix",
            Engine::Vector => "vector",
            Engine::Sync => "sync",
        }
    }
}

impl Instr {
    /// A contiguous load from device memory.
    pub const fn load(dst: BufId, addr: u64, bytes: u64) -> Instr {
        Instr::Load { dst, src: MemRef::Hbm(addr), shape: Shape::contiguous(bytes) }
    }

    /// A contiguous store to device memory.
    pub const fn store(src: BufId, addr: u64, bytes: u64) -> Instr {
        Instr::Store { src, dst: MemRef::Hbm(addr), shape: Shape::contiguous(bytes) }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Instr::Load { .. } | Instr::Store { .. } | Instr::Send { .. } => Engine::Dma,
            Instr::MatMul { .. } => Engine::Matrix,
            Instr::Vector { .. } => Engine::Vector,
            Instr::Signal { .. } | Instr::Wait { .. } | Instr::Barrier | Instr::Doorbell { .. } => Engine::Sync,
        }
    }

    /// Buffers this instruction reads.
    pub fn reads(&self) -> impl Iterator<Item = BufId> {
        let list: [Option<BufId>; 3] = match *self {
            Instr::Store { src, .. } | Instr::Send { src, .. } => [Some(src), None, None],
            Instr::MatMul { a, b, c, accumulate, .. } => [Some(a), Some(b), accumulate.then_some(c)],
            Instr::Vector { op, src, src2, dst, .. } => [Some(src), src2, (op == VectorOp::Fma).then_some(dst)],
            _ => [None, None, None],
        };
        list.into_iter().flatten()
    }

    /// The buffer this instruction writes, if any.
    pub fn writes(&self) -> Option<BufId> {
        match *self {
            Instr::Load { dst, .. } | Instr::Vector { dst, .. } => Some(dst),
            Instr::MatMul { c, .. } => Some(c),
            _ => None,
        }
    }

    /// Multiply-accumulates performed (zero for non-matrix instructions).
    pub fn macs(&self) -> u64 {
        match *self {
            Instr::MatMul { m, n, k, .. } => m as u64 * n as u64 * k as u64,
            _ => 0,
        }
    }

    /// Bytes a DMA instruction moves (zero for others).
    pub fn dma_bytes(&self) -> u64 {
        match *self {
            Instr::Load { shape, .. } | Instr::Store { shape, .. } => shape.bytes(),
            Instr::Send { bytes, .. } => bytes,
            _ => 0,
        }
    }

    /// Whether later instructions wait for this one (waits and barriers).
    pub fn fences_later(&self) -> bool {
        matches!(self, Instr::Wait { .. } | Instr::Barrier)
    }

    /// Whether this one waits for every earlier instruction (signals, barriers, doorbells).
    pub fn fences_earlier(&self) -> bool {
        matches!(self, Instr::Signal { .. } | Instr::Barrier | Instr::Doorbell { .. })
    }
}

impl fmt::Display for MemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemRef::Hbm(a) => write!(f, "hbm:{a:#x}"),
            MemRef::Shared(a) => write!(f, "shared:{a:#x}"),
            MemRef::Core { core, offset } => write!(f, "core{core}:{offset:#x}"),
        }
    }
}
