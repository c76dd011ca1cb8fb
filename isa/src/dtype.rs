//! Element types the engines compute on.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A numeric element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Fp8,
    Int8,
    Bf16,
    Fp16,
    Fp32,
    Int32,
}

impl Dtype {
    pub const ALL: [Dtype; 6] = [Dtype::Fp8, Dtype::Int8, Dtype::Bf16, Dtype::Fp16, Dtype::Fp32, Dtype::Int32];

    /// Storage size of one element, in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            Dtype::Fp8 | Dtype::Int8 => 1,
            Dtype::Bf16 | Dtype::Fp16 => 2,
            Dtype::Fp32 | Dtype::Int32 => 4,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Dtype::Fp8 => "fp8",
            Dtype::Int8 => "int8",
            Dtype::Bf16 => "bf16",
            Dtype::Fp16 => "fp16",
            Dtype::Fp32 => "fp32",
            Dtype::Int32 => "int32",
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Dtype, String> {
        Dtype::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown dtype `{s}`: expected one of fp8, int8, bf16, fp16, fp32, int32"))
    }
}
