//! Instructions and the scratchpad buffers they name.

use crate::Dtype;
use serde::{Deserialize, Serialize};

/// A named region of a core's scratchpad, declared by the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BufId(pub u16);

/// A scratchpad region: `bytes` long starting at byte `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffer {
    pub offset: u64,
    pub bytes: u64,
}

/// Element-wise and reduction operations of the vector engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorOp {
    Add,
    Mul,
    /// Fused multiply-add of three operands.
    Fma,
    Max,
    /// Sum reduction.
    Sum,
    Exp,
    Rsqrt,
    /// x * sigmoid(x), the gate of SwiGLU.
    Silu,
    Sigmoid,
    /// Type conversion (dtype is the source type).
    Convert,
    /// Selection of the largest k values (router top-k, sampling).
    TopK,
}

impl VectorOp {
    /// Transcendental ops take the vector engine's transcendental cost per element.
    pub const fn is_transcendental(self) -> bool {
        matches!(self, VectorOp::Exp | VectorOp::Rsqrt | VectorOp::Silu | VectorOp::Sigmoid)
    }
}

/// One instruction. Each runs on one engine of the core: `Load` and `Store` on
/// the DMA engine, `MatMul` on the matrix engine, `Vector` on the vector
/// engine. Ordering between engines comes from the buffers an instruction
/// reads and writes (see [`Instr::reads`], [`Instr::writes`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Instr {
    /// Copy `bytes` from device memory at `addr` into buffer `dst`.
    Load { dst: BufId, addr: u64, bytes: u64 },
    /// Copy `bytes` from buffer `src` to device memory at `addr`.
    Store { src: BufId, addr: u64, bytes: u64 },
    /// `c (+)= a[m×k] · b[k×n]`, inputs in `dtype`, accumulating in `acc`.
    MatMul { a: BufId, b: BufId, c: BufId, m: u32, n: u32, k: u32, dtype: Dtype, acc: Dtype, accumulate: bool },
    /// `dst = op(src, src2)` over `elems` elements of `dtype`.
    Vector { op: VectorOp, src: BufId, src2: Option<BufId>, dst: BufId, elems: u64, dtype: Dtype },
}

/// Which engine an instruction runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Dma,
    Matrix,
    Vector,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Dma, Engine::Matrix, Engine::Vector];
    pub const fn index(self) -> usize {
        self as usize
    }
    pub const fn name(self) -> &'static str {
        match self {
            Engine::Dma => "dma",
            Engine::Matrix => "matrix",
            Engine::Vector => "vector",
        }
    }
}

impl Instr {
    pub fn engine(&self) -> Engine {
        match self {
            Instr::Load { .. } | Instr::Store { .. } => Engine::Dma,
            Instr::MatMul { .. } => Engine::Matrix,
            Instr::Vector { .. } => Engine::Vector,
        }
    }

    /// Buffers this instruction reads.
    pub fn reads(&self) -> impl Iterator<Item = BufId> {
        let list: [Option<BufId>; 3] = match *self {
            Instr::Load { .. } => [None, None, None],
            Instr::Store { src, .. } => [Some(src), None, None],
            Instr::MatMul { a, b, c, accumulate, .. } => [Some(a), Some(b), accumulate.then_some(c)],
            Instr::Vector { src, src2, .. } => [Some(src), src2, None],
        };
        list.into_iter().flatten()
    }

    /// The buffer this instruction writes, if any.
    pub fn writes(&self) -> Option<BufId> {
        match *self {
            Instr::Load { dst, .. } => Some(dst),
            Instr::Store { .. } => None,
            Instr::MatMul { c, .. } => Some(c),
            Instr::Vector { dst, .. } => Some(dst),
        }
    }

    /// Multiply-accumulates performed (zero for non-matrix instructions).
    pub fn macs(&self) -> u64 {
        match *self {
            Instr::MatMul { m, n, k, .. } => m as u64 * n as u64 * k as u64,
            _ => 0,
        }
    }
}
