//! Quantities with units, parsed strictly from strings such as `"1.2 TB/s"`,
//! `"36 GiB"`, `"1.5 GHz"`, `"11 ns"`, `"0.3 pJ/bit"`, `"600 W"`.
//!
//! Rules: a unit is always required; `B` is a byte and `b` a bit; `K`, `M`,
//! `G`, `T` are powers of 1000 and `Ki`, `Mi`, `Gi`, `Ti` powers of 1024; unit
//! letters are case-sensitive, so nothing is guessed. Sizes, rates, frequencies
//! and durations are held as exact integers (bits, bits per second, hertz,
//! picoseconds); energies and powers as `f64`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sim_core::Time;
use std::fmt;

/// A size in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

/// A data rate, held exactly in bits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth {
    bits_per_s: u64,
}

/// A clock frequency in whole hertz.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frequency {
    hz: u64,
}

/// A span of time, in whole picoseconds (the engine's resolution).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub Time);

/// An energy, in picojoules.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Energy {
    pj: f64,
}

/// An energy per bit moved, in picojoules per bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct EnergyPerBit {
    pj_per_bit: f64,
}

/// A power, in watts.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Power {
    watts: f64,
}

impl Bytes {
    pub const fn get(self) -> u64 {
        self.0
    }
    pub const fn bits(self) -> u64 {
        self.0 * 8
    }
}

impl Bandwidth {
    pub const fn from_bits_per_s(bits_per_s: u64) -> Bandwidth {
        Bandwidth { bits_per_s }
    }
    pub const fn from_bytes_per_s(bytes_per_s: u64) -> Bandwidth {
        Bandwidth { bits_per_s: bytes_per_s * 8 }
    }
    pub const fn bits_per_s(self) -> u64 {
        self.bits_per_s
    }
    pub fn bytes_per_s(self) -> f64 {
        self.bits_per_s as f64 / 8.0
    }
    /// Time to move `bytes` at this rate, rounded up to a picosecond.
    pub fn time_for(self, bytes: u64) -> Time {
        Time::for_rate(bytes * 8, self.bits_per_s)
    }
    /// This rate in bytes, precomputed for fast transfer times (see [`sim_core::Rate`]).
    pub fn byte_rate(self) -> sim_core::Rate {
        sim_core::Rate::per_second(self.bits_per_s / 8)
            .unwrap_or_else(|| sim_core::Rate::per_second(1).expect("one byte per second is a rate"))
    }
    /// This rate shared equally `n` ways (rounded down to a bit per second).
    pub fn divided(self, n: u64) -> Bandwidth {
        Bandwidth { bits_per_s: self.bits_per_s / n.max(1) }
    }
    pub fn times(self, n: u64) -> Bandwidth {
        Bandwidth { bits_per_s: self.bits_per_s * n }
    }
}

impl Frequency {
    pub const fn from_hz(hz: u64) -> Frequency {
        Frequency { hz }
    }
    pub const fn hz(self) -> u64 {
        self.hz
    }
    pub fn clock(self) -> sim_core::Clock {
        sim_core::Clock::new(self.hz).expect("frequencies are validated to be positive")
    }
}

impl Duration {
    pub const fn time(self) -> Time {
        self.0
    }
    pub fn is_zero(&self) -> bool {
        self.0 == Time::ZERO
    }
}

impl Energy {
    pub const fn from_pj(pj: f64) -> Energy {
        Energy { pj }
    }
    pub const fn pj(self) -> f64 {
        self.pj
    }
}

impl EnergyPerBit {
    pub const fn from_pj_per_bit(pj_per_bit: f64) -> EnergyPerBit {
        EnergyPerBit { pj_per_bit }
    }
    pub const fn pj_per_bit(self) -> f64 {
        self.pj_per_bit
    }
}

impl Power {
    pub const fn from_watts(watts: f64) -> Power {
        Power { watts }
    }
    pub const fn watts(self) -> f64 {
        self.watts
    }
}

// ---------------------------------------------------------------- parsing

/// Splits `"1.2 TB/s"` into `(1.2, "TB/s")`; the number must be finite and not negative.
fn split(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')) || c == ' ')
        .unwrap_or(text.len());
    // An exponent marker followed by a letter belongs to the unit ("1 Eb" is not valid anyway).
    let (number, unit) = text.split_at(end);
    let value: f64 = number.parse().ok()?;
    if !value.is_finite() || value < 0.0 || number.starts_with('+') {
        return None;
    }
    Some((value, unit.trim_start()))
}

/// Bits in one unit of size, for the size units we accept.
fn size_unit_bits(unit: &str) -> Option<u64> {
    const K: u64 = 1_000;
    const KI: u64 = 1_024;
    Some(match unit {
        "B" => 8,
        "KB" | "kB" => 8 * K,
        "MB" => 8 * K * K,
        "GB" => 8 * K * K * K,
        "TB" => 8 * K * K * K * K,
        "KiB" => 8 * KI,
        "MiB" => 8 * KI * KI,
        "GiB" => 8 * KI * KI * KI,
        "TiB" => 8 * KI * KI * KI * KI,
        "b" | "bit" => 1,
        "Kb" | "kb" | "Kbit" => K,
        "Mb" | "Mbit" => K * K,
        "Gb" | "Gbit" => K * K * K,
        "Tb" | "Tbit" => K * K * K * K,
        "Kib" => KI,
        "Mib" => KI * KI,
        "Gib" => KI * KI * KI,
        "Tib" => KI * KI * KI * KI,
        _ => return None,
    })
}

/// Rounds a product that should be a whole number; `None` if it is not (to within 1e-6 of a unit).
fn whole(value: f64) -> Option<u64> {
    let rounded = value.round();
    if (value - rounded).abs() <= 1e-6 * rounded.max(1.0) && rounded >= 0.0 && rounded < u64::MAX as f64 {
        Some(rounded as u64)
    } else {
        None
    }
}

/// Why a quantity string was refused: what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    pub expected: &'static str,
    pub found: String,
    pub hint: Option<&'static str>,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, found \"{}\"", self.expected, self.found)?;
        if let Some(hint) = self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnitError {}

fn refuse(expected: &'static str, found: &str, hint: Option<&'static str>) -> UnitError {
    UnitError { expected, found: found.to_string(), hint }
}

const SIZE: &str = "a size such as \"36 GiB\", \"4 MB\" or \"512 B\"";
const RATE: &str = "a data rate such as \"1.2 TB/s\", \"900 GB/s\" or \"16 Gb/s\"";
const FREQ: &str = "a frequency such as \"1.5 GHz\" or \"800 MHz\"";
const TIME: &str = "a duration such as \"11 ns\", \"2 us\" or \"500 ps\"";
const ENERGY: &str = "an energy such as \"0.2 pJ\" or \"1.5 nJ\"";
const EPB: &str = "an energy per bit such as \"0.3 pJ/bit\" (or per byte, \"2.4 pJ/B\")";
const POWER: &str = "a power such as \"600 W\" or \"350 mW\"";

impl std::str::FromStr for Bytes {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (value, unit) = split(text).ok_or_else(|| refuse(SIZE, text, None))?;
        if unit.ends_with("/s") {
            return Err(refuse(SIZE, text, Some("that is a rate, not a size")));
        }
        let bits = size_unit_bits(unit).ok_or_else(|| refuse(SIZE, text, unit_hint(unit)))?;
        let total = whole(value * bits as f64).ok_or_else(|| refuse(SIZE, text, Some("not a whole number of bits")))?;
        if total % 8 != 0 {
            return Err(refuse(SIZE, text, Some("not a whole number of bytes")));
        }
        Ok(Bytes(total / 8))
    }
}

impl std::str::FromStr for Bandwidth {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (value, unit) = split(text).ok_or_else(|| refuse(RATE, text, None))?;
        let Some(per) = unit.strip_suffix("/s") else {
            let hint = if size_unit_bits(unit).is_some() {
                Some("that is a size; a rate needs \"/s\"")
            } else {
                unit_hint(unit)
            };
            return Err(refuse(RATE, text, hint));
        };
        let bits = size_unit_bits(per).ok_or_else(|| refuse(RATE, text, unit_hint(per)))?;
        let bits_per_s = whole(value * bits as f64)
            .ok_or_else(|| refuse(RATE, text, Some("not a whole number of bits per second")))?;
        if bits_per_s == 0 {
            return Err(refuse(RATE, text, Some("a rate must be positive")));
        }
        Ok(Bandwidth { bits_per_s })
    }
}

impl std::str::FromStr for Frequency {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (value, unit) = split(text).ok_or_else(|| refuse(FREQ, text, None))?;
        let scale = match unit {
            "Hz" => 1.0,
            "kHz" => 1e3,
            "MHz" => 1e6,
            "GHz" => 1e9,
            _ => return Err(refuse(FREQ, text, unit_hint(unit))),
        };
        let hz = whole(value * scale).ok_or_else(|| refuse(FREQ, text, Some("not a whole number of hertz")))?;
        if hz == 0 {
            return Err(refuse(FREQ, text, Some("a frequency must be positive")));
        }
        Ok(Frequency { hz })
    }
}

impl std::str::FromStr for Duration {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (value, unit) = split(text).ok_or_else(|| refuse(TIME, text, None))?;
        let scale = match unit {
            "ps" => 1.0,
            "ns" => 1e3,
            "us" | "µs" => 1e6,
            "ms" => 1e9,
            "s" => 1e12,
            _ => return Err(refuse(TIME, text, unit_hint(unit))),
        };
        let ps =
            whole(value * scale).ok_or_else(|| refuse(TIME, text, Some("the engine resolves whole picoseconds")))?;
        Ok(Duration(Time::from_ps(ps)))
    }
}

impl std::str::FromStr for Energy {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (value, unit) = split(text).ok_or_else(|| refuse(ENERGY, text, None))?;
        let pj = energy_scale(unit).ok_or_else(|| refuse(ENERGY, text, unit_hint(unit)))?.apply(value);
        Ok(Energy { pj })
    }
}

impl std::str::FromStr for EnergyPerBit {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (value, unit) = split(text).ok_or_else(|| refuse(EPB, text, None))?;
        let (energy, per) =
            unit.split_once('/').ok_or_else(|| refuse(EPB, text, Some("say per what: \"/bit\" or \"/B\"")))?;
        let scale = energy_scale(energy).ok_or_else(|| refuse(EPB, text, unit_hint(energy)))?;
        let bits = match per {
            "bit" | "b" => 1.0,
            "B" | "byte" => 8.0,
            _ => return Err(refuse(EPB, text, Some("per \"bit\" or per \"B\" (byte)"))),
        };
        Ok(EnergyPerBit { pj_per_bit: scale.apply(value) / bits })
    }
}

impl std::str::FromStr for Power {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let (value, unit) = split(text).ok_or_else(|| refuse(POWER, text, None))?;
        let scale = match unit {
            "mW" => Scale::Div(1e3),
            "W" => Scale::Mul(1.0),
            "kW" => Scale::Mul(1e3),
            _ => return Err(refuse(POWER, text, unit_hint(unit))),
        };
        Ok(Power { watts: scale.apply(value) })
    }
}

/// A power of ten to apply; dividing for the small prefixes keeps "350 mW"
/// exactly the double nearest 0.35 W.
#[derive(Clone, Copy)]
enum Scale {
    Mul(f64),
    Div(f64),
}

impl Scale {
    fn apply(self, value: f64) -> f64 {
        match self {
            Scale::Mul(m) => value * m,
            Scale::Div(d) => value / d,
        }
    }
}

fn energy_scale(unit: &str) -> Option<Scale> {
    Some(match unit {
        "fJ" => Scale::Div(1e3),
        "pJ" => Scale::Mul(1.0),
        "nJ" => Scale::Mul(1e3),
        "uJ" | "µJ" => Scale::Mul(1e6),
        "mJ" => Scale::Mul(1e9),
        "J" => Scale::Mul(1e12),
        _ => return None,
    })
}

fn unit_hint(unit: &str) -> Option<&'static str> {
    if unit.is_empty() {
        Some("the unit is missing")
    } else if unit.eq_ignore_ascii_case("gb") || unit.eq_ignore_ascii_case("gb/s") || unit.eq_ignore_ascii_case("tb/s")
    {
        Some("unit letters are case-sensitive: B is a byte, b a bit")
    } else {
        None
    }
}

// ---------------------------------------------------------------- printing

/// Prints `value` (a whole count of base units) with the largest of `units`
/// that divides it with at most four decimals, so that printing and parsing
/// back gives the same value.
fn print_exact(f: &mut fmt::Formatter<'_>, value: u64, units: &[(u64, &str)]) -> fmt::Result {
    f.write_str(&exact(value, units))
}

fn exact(value: u64, units: &[(u64, &str)]) -> String {
    for &(scale, name) in units {
        if value >= scale && (value as u128 * 10_000).is_multiple_of(scale as u128) {
            return format!("{} {name}", trim(value as f64 / scale as f64));
        }
    }
    let (scale, name) = units[units.len() - 1];
    format!("{} {name}", trim(value as f64 / scale as f64))
}

fn trim(value: f64) -> String {
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whichever of the binary or decimal prefixes reads shorter; binary on a tie.
        const KI: u64 = 1_024;
        let decimal = exact(
            self.0,
            &[(1_000_000_000_000, "TB"), (1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "KB"), (1, "B")],
        );
        for (scale, name) in [(KI * KI * KI * KI, "TiB"), (KI * KI * KI, "GiB"), (KI * KI, "MiB"), (KI, "KiB")] {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                let binary = format!("{} {name}", self.0 / scale);
                if binary.len() <= decimal.len() {
                    return f.write_str(&binary);
                }
                break;
            }
        }
        f.write_str(&decimal)
    }
}

impl Bandwidth {
    /// For reading, not for specs: bytes per second in the largest decimal
    /// unit that keeps the value at or above one, to four significant
    /// digits ("126.0 GB/s"). `Display` gives the exact value instead.
    pub fn readable(self) -> String {
        let bytes = self.bytes_per_s();
        let units = [(1e12, "TB/s"), (1e9, "GB/s"), (1e6, "MB/s"), (1e3, "KB/s")];
        let (scale, unit) = units.iter().copied().find(|(s, _)| bytes >= *s).unwrap_or((1.0, "B/s"));
        let value = bytes / scale;
        let decimals = if value >= 100.0 {
            1
        } else if value >= 10.0 {
            2
        } else {
            3
        };
        format!("{value:.decimals$} {unit}")
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whichever of bytes or bits reads shorter; bytes on a tie.
        let bits = exact(
            self.bits_per_s,
            &[(1_000_000_000_000, "Tb/s"), (1_000_000_000, "Gb/s"), (1_000_000, "Mb/s"), (1_000, "Kb/s"), (1, "b/s")],
        );
        if self.bits_per_s.is_multiple_of(8) {
            let bytes = exact(
                self.bits_per_s / 8,
                &[
                    (1_000_000_000_000, "TB/s"),
                    (1_000_000_000, "GB/s"),
                    (1_000_000, "MB/s"),
                    (1_000, "KB/s"),
                    (1, "B/s"),
                ],
            );
            if bytes.len() <= bits.len() {
                return f.write_str(&bytes);
            }
        }
        f.write_str(&bits)
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Frequencies such as 1.9073 GHz need four decimals of GHz; print MHz then.
        print_exact(f, self.hz, &[(1_000_000_000, "GHz"), (1_000_000, "MHz"), (1_000, "kHz"), (1, "Hz")])
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        print_exact(
            f,
            self.0.as_ps(),
            &[(1_000_000_000_000, "s"), (1_000_000_000, "ms"), (1_000_000, "us"), (1_000, "ns"), (1, "ps")],
        )
    }
}

impl fmt::Display for Energy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pJ", self.pj)
    }
}

impl fmt::Display for EnergyPerBit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pJ/bit", self.pj_per_bit)
    }
}

impl fmt::Display for Power {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} W", self.watts)
    }
}

// ---------------------------------------------------------------- serde

macro_rules! string_serde {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a quantity with its unit, as a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse().map_err(|e: UnitError| E::custom(e))
                    }
                    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<$ty, E> {
                        Err(E::custom(format!("{}, found the bare number {n} (the unit is missing; write it as a string)", expected_of::<$ty>())))
                    }
                    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<$ty, E> {
                        Err(E::custom(format!("{}, found the bare number {n} (the unit is missing; write it as a string)", expected_of::<$ty>())))
                    }
                    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<$ty, E> {
                        Err(E::custom(format!("{}, found the bare number {n} (the unit is missing; write it as a string)", expected_of::<$ty>())))
                    }
                }
                d.deserialize_any(V)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}

string_serde!(Bytes, Bandwidth, Frequency, Duration, Energy, EnergyPerBit, Power);

fn expected_of<T: 'static>() -> String {
    use std::any::TypeId;
    let t = TypeId::of::<T>();
    let what = if t == TypeId::of::<Bytes>() {
        SIZE
    } else if t == TypeId::of::<Bandwidth>() {
        RATE
    } else if t == TypeId::of::<Frequency>() {
        FREQ
    } else if t == TypeId::of::<Duration>() {
        TIME
    } else if t == TypeId::of::<Energy>() {
        ENERGY
    } else if t == TypeId::of::<EnergyPerBit>() {
        EPB
    } else {
        POWER
    };
    format!("expected {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_bits_bytes_and_prefixes_apart() {
        assert_eq!("36 GiB".parse::<Bytes>().unwrap(), Bytes(36 << 30));
        assert_eq!("36 GB".parse::<Bytes>().unwrap(), Bytes(36_000_000_000));
        assert_eq!("16 Gb".parse::<Bytes>().unwrap(), Bytes(2_000_000_000));
        assert_eq!("512 B".parse::<Bytes>().unwrap(), Bytes(512));
        assert_eq!("4MiB".parse::<Bytes>().unwrap(), Bytes(4 << 20));
    }

    #[test]
    fn rates_are_exact_in_bits() {
        assert_eq!("1.2 TB/s".parse::<Bandwidth>().unwrap().bits_per_s(), 9_600_000_000_000);
        assert_eq!("16 Gb/s".parse::<Bandwidth>().unwrap().bits_per_s(), 16_000_000_000);
        assert_eq!("9.375 Gb/s".parse::<Bandwidth>().unwrap().bits_per_s(), 9_375_000_000);
        assert_eq!("64 GiB/s".parse::<Bandwidth>().unwrap().bits_per_s(), 64 * 8 * (1 << 30));
    }

    #[test]
    fn a_size_is_not_a_rate() {
        let e = "1.2 TB".parse::<Bandwidth>().unwrap_err();
        assert!(e.to_string().contains("that is a size"), "{e}");
        let e = "1.2 TB/s".parse::<Bytes>().unwrap_err();
        assert!(e.to_string().contains("rate, not a size"), "{e}");
    }

    #[test]
    fn bad_quantities_are_refused() {
        for bad in ["", "GB/s", "1.2", "-3 GB/s", "1.2 tb/s", "1.2 TBps", "0 GB/s", "+1 GB/s", "1 2 GB/s", "nan GB/s"] {
            assert!(bad.parse::<Bandwidth>().is_err(), "{bad:?} was accepted");
        }
        assert!("0.5 ps".parse::<Duration>().is_err());
        assert!("3 bits".parse::<Bytes>().is_err());
        assert!("0 GHz".parse::<Frequency>().is_err());
    }

    #[test]
    fn durations_frequencies_energies_and_powers() {
        assert_eq!("11 ns".parse::<Duration>().unwrap().time(), Time::from_ps(11_000));
        assert_eq!("1.9073 GHz".parse::<Frequency>().unwrap().hz(), 1_907_300_000);
        assert_eq!("0.3 pJ/bit".parse::<EnergyPerBit>().unwrap().pj_per_bit(), 0.3);
        assert!(("2.4 pJ/B".parse::<EnergyPerBit>().unwrap().pj_per_bit() - 0.3).abs() < 1e-12);
        assert_eq!("1.5 nJ".parse::<Energy>().unwrap().pj(), 1500.0);
        assert_eq!("600 W".parse::<Power>().unwrap().watts(), 600.0);
        assert_eq!("350 mW".parse::<Power>().unwrap().watts(), 0.35);
    }

    #[test]
    fn printing_round_trips() {
        for text in
            ["36 GiB", "1.2 TB/s", "9.375 Gb/s", "1.9073 GHz", "11 ns", "1.5 ms", "144 GB", "750 B", "70.4 GB/s"]
        {
            let b = text.parse::<Bytes>().map(|v| v.to_string());
            let r = text.parse::<Bandwidth>().map(|v| v.to_string());
            let f = text.parse::<Frequency>().map(|v| v.to_string());
            let d = text.parse::<Duration>().map(|v| v.to_string());
            let printed = b.or(r).or(f).or(d).unwrap();
            assert_eq!(printed, text);
        }
    }

    #[test]
    fn transfer_times_round_up() {
        let bw = "1 GB/s".parse::<Bandwidth>().unwrap();
        assert_eq!(bw.time_for(1), Time::from_ns(1));
        let bw = "3 GB/s".parse::<Bandwidth>().unwrap();
        assert_eq!(bw.time_for(1).as_ps(), 334);
    }

    #[test]
    fn readable_rates_keep_four_digits_in_the_largest_unit() {
        // PCIe 5.0 x16, one direction: 32 GT/s x 16 lanes x 128/130.
        let pcie = Bandwidth::from_bits_per_s(504_123_076_923);
        assert_eq!(pcie.readable(), "63.02 GB/s");
        assert_eq!(Bandwidth::from_bytes_per_s(4_800_000_000_000).readable(), "4.800 TB/s");
        assert_eq!(Bandwidth::from_bytes_per_s(844_800_000_000).readable(), "844.8 GB/s");
        assert_eq!(Bandwidth::from_bytes_per_s(512).readable(), "512.0 B/s");
    }
}
