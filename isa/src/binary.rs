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
