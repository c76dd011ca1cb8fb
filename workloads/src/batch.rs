//! The requests a run serves and where each one is: how much context it
//! has, how many tokens it has generated, and when it got them. The serving
//! runtime asks it for each step's work and tells it when tokens come out;
//! `trace gen` walks it without simulating, so both see the same steps.

use crate::build::{RequestStep, replica_of};
use crate::workload::{Mtp, Phase, Scenario};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use sim_core::Time;

/// Mixed into the run's seed for the draws of request lengths.
const LENGTH_STREAM: u64 = 0x6c65_6e67_7468_7321;
/// Mixed into the run's seed for the draws of accepted drafts.
const ACCEPTANCE_STREAM: u64 = 0x6163_6365_7074_2121;

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
#[derive(Clone, Debug)]
pub struct Batch {
    requests: Vec<Request>,
    /// Multi-token prediction, and the draws of which drafts are accepted.
    mtp: Option<Mtp>,
    rng: Xoshiro256PlusPlus,
    /// Steps to run at most (a recorded trace has only so many); `None`: until every request is done.
    max_steps: Option<u32>,
    steps: u32,
}

impl Batch {
    /// The scenario's batch, each request's lengths drawn from `seed`.
    pub fn from_scenario(s: &Scenario, seed: u64) -> Batch {
        // A stream of its own, so lengths do not shift the router's draws.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ LENGTH_STREAM);
        let requests = (0..s.batch)
            .map(|_| {
                let context = s.context_tokens.draw(&mut rng);
                let target = s.output_tokens.draw(&mut rng);
                Request {
                    context,
                    target,
                    prefilled: s.phase == Phase::Decode,
                    cached: if s.phase == Phase::Decode { context } else { 0 },
                    generated: 0,
                    record: RequestRecord::default(),
                }
            })
            .collect();
        Batch::new(requests, s.mtp, seed, None)
    }

    /// The requests of one recorded step, which is all they run: each may
    /// make as many tokens as the step computes logits for.
    pub fn from_step(steps: &[RequestStep], mtp: Option<Mtp>, seed: u64) -> Batch {
        let requests = steps
            .iter()
            .map(|r| Request {
                context: if r.cached > 0 { r.cached } else { r.new_tokens },
                target: r.logits,
                prefilled: r.cached > 0 || r.new_tokens == r.logits,
                cached: r.cached,
                generated: 0,
                record: RequestRecord::default(),
            })
            .collect();
        Batch::new(requests, mtp, seed, Some(1))
    }

    fn new(requests: Vec<Request>, mtp: Option<Mtp>, seed: u64, max_steps: Option<u32>) -> Batch {
        let rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ ACCEPTANCE_STREAM);
        Batch { requests, mtp, rng, max_steps, steps: 0 }
    }

    /// KV-cache tokens the busiest of `replicas` data-parallel replicas holds
    /// at the end, with requests dealt to replicas as steps deal them.
    pub fn busiest_replica_tokens(&self, replicas: u32) -> u64 {
        let mut held = vec![0u64; replicas.max(1) as usize];
        for (i, r) in self.requests.iter().enumerate() {
            held[replica_of(i, self.requests.len(), replicas)] += (r.context + r.target) as u64;
        }
        held.into_iter().max().unwrap_or(0)
    }

    /// The requests that still have tokens to make.
    pub fn active(&self) -> Vec<usize> {
        if self.max_steps.is_some_and(|m| self.steps >= m) {
            return Vec::new();
        }
        (0..self.requests.len()).filter(|&i| self.requests[i].generated < self.requests[i].target).collect()
    }

    /// Requests that ended short of their tokens though the batch ran all its steps.
    pub fn unfinished(&self) -> Option<&Request> {
        let all_steps_run = self.max_steps.is_some_and(|m| self.steps >= m);
        self.requests.iter().find(|r| r.generated < r.target && !all_steps_run)
    }

    /// Whether any of `active` is still to be prefilled.
    pub fn prefills(&self, active: &[usize]) -> bool {
        active.iter().any(|&i| !self.requests[i].prefilled)
    }

    /// What each of `active` computes in the next step: its prompt, or its
    /// last token and, with multi-token prediction, the drafts to verify.
    pub fn step(&self, active: &[usize]) -> Vec<RequestStep> {
        let drafts = self.mtp.map_or(0, |m| m.draft_tokens);
        active
            .iter()
            .map(|&i| {
                let r = &self.requests[i];
                if r.prefilled {
                    RequestStep { cached: r.cached, new_tokens: 1 + drafts, logits: 1 + drafts }
                } else {
                    RequestStep { cached: 0, new_tokens: r.context, logits: 1 }
                }
            })
            .collect()
    }

    /// Each of `active` got its tokens at `now`: one after a prefill; one
    /// plus the drafts accepted after a decode step. Returns the tokens made.
    pub fn tokens_out(&mut self, active: &[usize], now: Time) -> u32 {
        self.steps += 1;
        let mut made_all = 0;
        for &i in active {
            let accepted = match self.mtp {
                Some(mtp) if self.requests[i].prefilled => {
                    // Drafts are checked in order; the first rejected one ends the run of accepted ones.
                    (0..mtp.draft_tokens).take_while(|_| self.rng.random_bool(mtp.acceptance)).count() as u32
                }
                _ => 0,
            };
            let r = &mut self.requests[i];
            let made = (1 + accepted).min(r.target - r.generated);
            // A prefill fills the cache with the prompt; a decode step adds the tokens it keeps.
            r.cached = if r.prefilled { r.cached + made } else { r.context };
            r.prefilled = true;
            r.generated += made;
            r.record.tokens += made;
            r.record.first_token.get_or_insert(now);
            r.record.last_token = Some(now);
            made_all += made;
        }
        made_all
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.requests.iter().map(|r| r.record.clone()).collect()
    }
}
