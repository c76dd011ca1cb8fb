//! The compact binary encoding of programs: a four-byte magic, a format
//! version, then the programs in postcard's varint encoding of their serde form.

use crate::Program;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 4] = b"NPUB";
/// Version of the binary format; bump it when the instruction types change.
pub const FORMAT_VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Image {
    programs: Vec<(u16, Program)>,
}

/// Encode the programs of several cores.
pub fn encode(programs: &[(u16, Program)]) -> Vec<u8> {
    let image = Image { programs: programs.to_vec() };
    let mut out = MAGIC.to_vec();
    out.push(FORMAT_VERSION);
    out.extend(postcard::to_allocvec(&image).expect("programs always encode"));
    out
}

/// Decode programs; errors say what is wrong with the bytes.
pub fn decode(bytes: &[u8]) -> Result<Vec<(u16, Program)>, String> {
    let body = bytes.strip_prefix(MAGIC.as_slice()).ok_or("not an npusim program image (bad magic)")?;
    let (&version, body) = body.split_first().ok_or("truncated program image")?;
    if version != FORMAT_VERSION {
        return Err(format!("program image format version {version}; this npusim reads version {FORMAT_VERSION}"));
    }
    let image: Image = postcard::from_bytes(body).map_err(|e| format!("corrupt program image: {e}"))?;
    Ok(image.programs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm;

    #[test]
    fn round_trips_and_is_compact() {
        let text = ".buffer x 7168\n.buffer w 458752\n.buffer y 256\nload x, hbm:0x0, 7168\nmatmul y, x, w, m=1 n=64 k=7168 fp8 acc=fp32\nstore y, hbm:0x200000, 128\n";
        let programs = asm::parse(text).unwrap().programs;
        let bytes = encode(&programs);
        assert_eq!(decode(&bytes).unwrap(), programs);
        assert!(bytes.len() < text.len() / 2, "{} bytes", bytes.len());
        assert!(decode(b"NPUX").is_err());
        let mut wrong = bytes.clone();
        wrong[4] = 99;
        assert!(decode(&wrong).unwrap_err().contains("version 99"));
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::{BufId, Dtype, Instr, MemRef, Shape, VectorOp, asm};

    /// A small deterministic generator (64-bit LCG), so failures reproduce.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % below.max(1)
        }
        fn dtype(&mut self) -> Dtype {
            Dtype::ALL[self.next(6) as usize]
        }
    }

    fn random_program(g: &mut Gen) -> Program {
        let mut p = Program::new();
        let buffers = 1 + g.next(6);
        for i in 0..buffers {
            let _ = p.named_buffer(format!("t{i}"), 64 + g.next(1 << 20));
        }
        let buf = |g: &mut Gen| BufId(g.next(buffers) as u16);
        for _ in 0..g.next(40) {
            let mem = match g.next(3) {
                0 => MemRef::Hbm(g.next(1 << 40)),
                1 => MemRef::Shared(g.next(1 << 26)),
                _ => MemRef::Core { core: g.next(64) as u16, offset: g.next(1 << 22) },
            };
            let shape = if g.next(2) == 0 {
                Shape::contiguous(1 + g.next(1 << 20))
            } else {
                let row = 1 + g.next(4096);
                Shape { rows: 1 + g.next(512) as u32, row_bytes: row, stride: row + g.next(4096) }
            };
            let instr = match g.next(10) {
                0 => Instr::Load { dst: buf(g), src: mem, shape },
                1 => Instr::Store { src: buf(g), dst: mem, shape },
                2 => Instr::Send {
                    src: buf(g),
                    core: g.next(64) as u16,
                    offset: g.next(1 << 20),
                    bytes: 1 + g.next(1 << 16),
                },
                3 => Instr::MatMul {
                    c: buf(g),
                    a: buf(g),
                    b: buf(g),
                    m: 1 + g.next(4096) as u32,
                    n: 1 + g.next(4096) as u32,
                    k: 1 + g.next(8192) as u32,
                    dtype: g.dtype(),
                    acc: g.dtype(),
                    accumulate: g.next(2) == 0,
                },
                4 | 5 => {
                    let ops = [
                        VectorOp::Add,
                        VectorOp::Mul,
                        VectorOp::Fma,
                        VectorOp::Max,
                        VectorOp::Sum,
                        VectorOp::Exp,
                        VectorOp::Rsqrt,
                        VectorOp::Silu,
                        VectorOp::Sigmoid,
                    ];
                    let op = match g.next(11) {
                        9 => VectorOp::TopK { k: 1 + g.next(64) as u32 },
                        10 => VectorOp::Convert { to: g.dtype() },
                        i => ops[i as usize],
                    };
                    let src2 = (g.next(2) == 0).then(|| buf(g));
                    Instr::Vector { op, dst: buf(g), src: buf(g), src2, elems: 1 + g.next(1 << 20), dtype: g.dtype() }
                }
                6 => Instr::Signal { sem: g.next(256) as u8, core: (g.next(2) == 0).then(|| g.next(64) as u16) },
                7 => Instr::Wait { sem: g.next(256) as u8, count: 1 + g.next(8) as u32 },
                8 => Instr::Barrier,
                _ => Instr::Doorbell { value: g.next(1 << 31) as u32 },
            };
            p.push(instr);
        }
        p
    }

    #[test]
    fn random_programs_round_trip_through_text_and_binary() {
        let mut g = Gen(7);
        for _ in 0..500 {
            let programs: Vec<(u16, Program)> =
                (0..1 + g.next(3)).map(|c| (c as u16, random_program(&mut g))).collect();
            assert_eq!(decode(&encode(&programs)).unwrap(), programs);
            let text = asm::print_assembly(&programs);
            let parsed = asm::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(parsed.programs, programs, "{text}");
        }
    }
}
