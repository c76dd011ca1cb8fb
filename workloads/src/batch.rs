//! The requests a run serves and where each one is: how much context it
//! has, how many tokens it has generated, and when it got them. The serving
//! runtime asks it for each step's work and tells it when tokens come out;
//! `trace gen` walks it without simulating, so both see the same steps.

use crate::build::RequestStep;
use crate::workload::{Phase, Scenario};
use sim_core::Time;

/// When a request got its tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestRecord {
    pub arrival: Time,
    pub first_token: Option<Time>,
    pub last_token: Option<Time>,
    pub tokens: u32,
}

/// One request of the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Tokens of prompt, or already in the KV cache when the run starts.
    pub context: u32,
    /// Tokens to generate.
    pub target: u32,
    /// Whether the context is already in the KV cache (decode) or must be prefilled first.
    pub prefilled: bool,
    /// Tokens in the KV cache: the context once prefilled, then one more per decode step.
    pub cached: u32,
    pub generated: u32,
    pub record: RequestRecord,
}

/// The requests of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    requests: Vec<Request>,
}

impl Batch {
    /// The scenario's batch: every request alike.
    pub fn from_scenario(s: &Scenario) -> Batch {
        let request = Request {
            context: s.context_tokens,
            target: s.output_tokens,
            prefilled: s.phase == Phase::Decode,
            cached: if s.phase == Phase::Decode { s.context_tokens } else { 0 },
            generated: 0,
            record: RequestRecord::default(),
        };
        Batch { requests: vec![request; s.batch as usize] }
    }

    /// The requests of one recorded step, each to make one token.
    pub fn from_step(steps: &[RequestStep]) -> Batch {
        let requests = steps
            .iter()
            .map(|r| Request {
                context: if r.cached > 0 { r.cached } else { r.new_tokens },
                target: 1,
                prefilled: r.cached > 0 || r.new_tokens == 1,
                cached: r.cached,
                generated: 0,
                record: RequestRecord::default(),
            })
            .collect();
        Batch { requests }
    }

    /// The requests that still have tokens to make.
    pub fn active(&self) -> Vec<usize> {
        (0..self.requests.len()).filter(|&i| self.requests[i].generated < self.requests[i].target).collect()
    }

    /// Whether any of `active` is still to be prefilled.
    pub fn prefills(&self, active: &[usize]) -> bool {
        active.iter().any(|&i| !self.requests[i].prefilled)
    }

    /// What each of `active` computes in the next step.
    pub fn step(&self, active: &[usize]) -> Vec<RequestStep> {
        active
            .iter()
            .map(|&i| {
                let r = &self.requests[i];
                if r.prefilled {
                    RequestStep { cached: r.cached, new_tokens: 1 }
                } else {
                    RequestStep { cached: 0, new_tokens: r.context }
                }
            })
            .collect()
    }

    /// Each of `active` got a token at `now`.
    pub fn tokens_out(&mut self, active: &[usize], now: Time) {
        for &i in active {
            let r = &mut self.requests[i];
            // A prefill fills the cache with the prompt; a decode step adds its one token.
            r.cached = if r.prefilled { r.cached + 1 } else { r.context };
            r.prefilled = true;
            r.generated += 1;
            r.record.tokens += 1;
            r.record.first_token.get_or_insert(now);
            r.record.last_token = Some(now);
        }
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.requests.iter().map(|r| r.record.clone()).collect()
    }

    /// Tokens each request is to generate.
    pub fn targets(&self) -> impl Iterator<Item = u32> + '_ {
        self.requests.iter().map(|r| r.target)
    }
}
