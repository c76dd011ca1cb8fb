//! Token counts of requests: a fixed number, or drawn per request from a
//! seeded distribution. In a workload file a length is either an integer
//! (`output_tokens = 256`) or a table naming its distribution
//! (`output_tokens = { distribution = "lognormal", mean = 256, std_dev = 128, max = 2048 }`).

use rand::{Rng, RngExt};
use rand_distr::{Distribution, LogNormal, Normal};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A token count per request.
#[derive(Clone, Debug, PartialEq)]
pub enum Length {
    Fixed(u32),
    Drawn(Spread),
}

/// A distribution of token counts. Draws are rounded to whole tokens and
/// kept within `[min, max]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "lowercase", deny_unknown_fields)]
pub enum Spread {
    /// Every count from `min` to `max` equally likely.
    Uniform { min: u32, max: u32 },
    /// A normal distribution of the counts.
    Normal {
        mean: f64,
        std_dev: f64,
        #[serde(default = "one")]
        min: u32,
        max: u32,
    },
    /// A log-normal distribution whose counts have this mean and standard
    /// deviation (the long right tail of real prompt and answer lengths).
    LogNormal {
        mean: f64,
        std_dev: f64,
        #[serde(default = "one")]
        min: u32,
        max: u32,
    },
}

fn one() -> u32 {
    1
}

/// The longest prompt or answer a request may have: 2^24 tokens, far past
/// any model's context, and small enough that sums of them never wrap.
pub const MAX_TOKENS: u32 = 1 << 24;

impl Length {
    /// One request's count.
    pub fn draw(&self, rng: &mut impl Rng) -> u32 {
        let (x, min, max) = match *self {
            Length::Fixed(n) => return n,
            Length::Drawn(Spread::Uniform { min, max }) => return rng.random_range(min..=max.max(min)),
            Length::Drawn(Spread::Normal { mean, std_dev, min, max }) => {
                (Normal::new(mean, std_dev).map_or(mean, |d| d.sample(rng)), min, max)
            }
            Length::Drawn(Spread::LogNormal { mean, std_dev, min, max }) => {
                (LogNormal::from_mean_cv(mean, std_dev / mean).map_or(mean, |d| d.sample(rng)), min, max)
            }
        };
        (x.round().max(0.0) as u32).clamp(min, max.max(min))
    }

    /// The largest count a draw can give.
    pub fn max(&self) -> u32 {
        match *self {
            Length::Fixed(n) => n,
            Length::Drawn(Spread::Uniform { max, .. } | Spread::Normal { max, .. } | Spread::LogNormal { max, .. }) => {
                max
            }
        }
    }

    /// What is wrong with it, if anything: a message for the field.
    pub fn problem(&self) -> Option<String> {
        let (min, max) = match *self {
            Length::Fixed(0) => return Some("expected at least 1, found 0".into()),
            Length::Fixed(n) if n > MAX_TOKENS => {
                return Some(format!("expected at most {MAX_TOKENS} tokens (no model reads more), found {n}"));
            }
            Length::Fixed(_) => return None,
            Length::Drawn(Spread::Uniform { min, max }) => (min, max),
            Length::Drawn(
                Spread::Normal { mean, std_dev, min, max } | Spread::LogNormal { mean, std_dev, min, max },
            ) => {
                if !(mean > 0.0 && mean.is_finite()) {
                    return Some(format!("expected a positive mean, found {mean}"));
                }
                if !(std_dev >= 0.0 && std_dev.is_finite()) {
                    return Some(format!("expected a standard deviation of 0 or more, found {std_dev}"));
                }
                (min, max)
            }
        };
        if min == 0 {
            Some("expected min of at least 1, found 0".into())
        } else if max > MAX_TOKENS {
            Some(format!("expected at most {MAX_TOKENS} tokens (no model reads more), found {max}"))
        } else if max < min {
            Some(format!("expected max ({max}) of at least min ({min})"))
        } else {
            None
        }
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Spread::Uniform { min, max } => write!(f, "uniform {min}-{max}"),
            Spread::Normal { mean, std_dev, min, max } => write!(f, "normal {mean} ± {std_dev} in {min}-{max}"),
            Spread::LogNormal { mean, std_dev, min, max } => {
                write!(f, "log-normal {mean} ± {std_dev} in {min}-{max}")
            }
        }
    }
}

impl Serialize for Length {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Length::Fixed(n) => s.serialize_u32(*n),
            Length::Drawn(spread) => spread.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Length {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Length, D::Error> {
        struct LengthVisitor;
        impl<'de> Visitor<'de> for LengthVisitor {
            type Value = Length;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a token count, or a table with `distribution` (uniform, normal, lognormal)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Length, E> {
                u32::try_from(v).map(Length::Fixed).map_err(|_| E::custom(format!("{v} tokens is more than 2^32 - 1")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Length, E> {
                u64::try_from(v).map_err(|_| E::custom(format!("expected a token count, found {v}")))?;
                self.visit_u64(v as u64)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Length, A::Error> {
                Spread::deserialize(de::value::MapAccessDeserializer::new(map)).map(Length::Drawn)
            }
        }
        d.deserialize_any(LengthVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    #[derive(Deserialize, Serialize)]
    struct Doc {
        n: Length,
    }

    fn parse(text: &str) -> Result<Length, String> {
        toml::from_str::<Doc>(text).map(|d| d.n).map_err(|e| e.to_string())
    }

    #[test]
    fn a_length_is_a_count_or_a_distribution_and_prints_back_the_same() {
        assert_eq!(parse("n = 7").unwrap(), Length::Fixed(7));
        let drawn = parse("n = { distribution = \"lognormal\", mean = 300.0, std_dev = 150.0, max = 4096 }").unwrap();
        assert_eq!(drawn, Length::Drawn(Spread::LogNormal { mean: 300.0, std_dev: 150.0, min: 1, max: 4096 }));
        let text = toml::to_string(&Doc { n: drawn.clone() }).unwrap();
        assert_eq!(parse(&text).unwrap(), drawn);
        assert!(parse("n = { distribution = \"poisson\", mean = 3.0 }").unwrap_err().contains("poisson"));
        assert!(parse("n = -3").unwrap_err().contains("-3"));
        assert!(
            parse("n = { distribution = \"uniform\", min = 1, max = 5, mean = 3.0 }").unwrap_err().contains("mean")
        );
    }

    #[test]
    fn draws_stay_in_bounds_and_have_the_asked_mean() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let l = Length::Drawn(Spread::LogNormal { mean: 500.0, std_dev: 250.0, min: 1, max: 100_000 });
        let draws: Vec<u32> = (0..20_000).map(|_| l.draw(&mut rng)).collect();
        let mean = draws.iter().map(|&x| x as f64).sum::<f64>() / draws.len() as f64;
        assert!((mean - 500.0).abs() < 10.0, "mean {mean}");
        let var = draws.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!((var.sqrt() - 250.0).abs() < 15.0, "std dev {}", var.sqrt());
        let capped = Length::Drawn(Spread::Normal { mean: 100.0, std_dev: 80.0, min: 50, max: 120 });
        assert!((0..2_000).map(|_| capped.draw(&mut rng)).all(|x| (50..=120).contains(&x)));
        let uniform = Length::Drawn(Spread::Uniform { min: 3, max: 5 });
        let mut seen = [false; 3];
        for _ in 0..100 {
            seen[uniform.draw(&mut rng) as usize - 3] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn bad_bounds_are_named() {
        assert!(Length::Fixed(0).problem().is_some());
        let l = Length::Drawn(Spread::Uniform { min: 9, max: 3 });
        assert_eq!(l.problem().unwrap(), "expected max (3) of at least min (9)");
        let l = Length::Drawn(Spread::Normal { mean: -1.0, std_dev: 1.0, min: 1, max: 3 });
        assert!(l.problem().unwrap().contains("positive mean"));
    }
}
