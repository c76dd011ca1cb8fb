//! The requests a run serves and how the host batches them: continuous
//! batching with a maximum batch, chunked prefill under a token budget, and
//! a KV cache allocated in blocks, with preemption by recomputation when it
//! is full. The serving runtime asks it for each step's work and tells it
//! when tokens come out; `trace gen` walks it without simulating, so both
//! see the same steps.
//!
//! A step first serves the running requests that decode (oldest first),
//! preempting the newest running request when one of them needs a KV block
//! and none is free; then continues the running prefills; then admits
//! waiting requests in arrival order while the batch, the token budget and
//! the KV cache allow. A preempted request gives up its blocks and waits at
//! the front of the queue; when readmitted it prefills its prompt and the
//! tokens it had made (as vLLM's recompute preemption does).
//!
//! With data-parallel replicas each replica has its own share of the batch,
//! its own token budget and its own KV cache, as each rank of a
//! data-parallel deployment does. Replicas that share nothing in a step
//! ([`Policy::independent`]) step on their own, as separate engines behind
//! a router: a request goes to the replica with the fewest outstanding
//! requests when it arrives (on a tie, in an order that spreads a small
//! batch over the cards), waits in that replica's share of the queue, and
//! the runtime plans each replica's steps apart ([`Scheduler::plan_replica`]).
//! Replicas joined by an expert-parallel all-to-all step together (one step
//! spans them all, as DP attention does), and a request is admitted to the
//! least loaded replica that has room when a step is planned. Either way
//! it stays on its replica, its KV cache with it, until it finishes.

use crate::build::RequestStep;
use crate::placement::replica_of;
use crate::workload::{Mtp, Phase, Scenario};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use sim_core::Time;
use std::collections::VecDeque;

/// Mixed into the run's seed for the draws of request lengths.
const LENGTH_STREAM: u64 = 0x6c65_6e67_7468_7321;
/// Mixed into the run's seed for the draws of accepted drafts.
const ACCEPTANCE_STREAM: u64 = 0x6163_6365_7074_2121;

/// What happened to one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestRecord {
    pub arrival: Time,
    /// When it first entered a step.
    pub first_scheduled: Option<Time>,
    pub first_token: Option<Time>,
    pub last_token: Option<Time>,
    pub prompt_tokens: u32,
    pub tokens: u32,
    pub preemptions: u32,
    /// When each token reached the host (several at once with accepted drafts).
    pub token_times: Vec<Time>,
}

impl RequestRecord {
    /// Arrival to first token.
    pub fn ttft(&self) -> Option<Time> {
        self.first_token.map(|t| t - self.arrival)
    }
    /// Mean time per output token after the first; needs two tokens.
    pub fn tpot(&self) -> Option<Time> {
        let (first, last) = (self.first_token?, self.last_token?);
        (self.tokens > 1).then(|| Time::from_ps((last - first).as_ps() / (self.tokens as u64 - 1)))
    }
    /// Arrival to last token.
    pub fn e2e(&self) -> Option<Time> {
        self.last_token.map(|t| t - self.arrival)
    }
}

/// A request to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub at: Time,
    /// Tokens of prompt (or of context already cached, in a decode scenario).
    pub prompt: u32,
    /// Tokens to generate.
    pub output: u32,
}

/// How requests are batched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Requests in the running batch at most, all replicas together.
    pub max_batch: u32,
    /// Tokens one step computes at most on each replica; `None`: whole prompts.
    pub token_budget: Option<u32>,
    pub block_tokens: u32,
    /// Blocks of KV cache in all, shared equally by the replicas; `None`: no
    /// limit (the run checked the batch fits).
    pub kv_blocks: Option<u64>,
    /// Data-parallel replicas (1: one scheduler's worth of everything).
    pub replicas: u32,
    /// Whether the replicas step on their own (requests routed on arrival).
    pub independent: bool,
}

impl Policy {
    fn replica_batch(&self) -> usize {
        self.max_batch.div_ceil(self.replicas.max(1)) as usize
    }
}

/// One request and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub prompt: u32,
    pub target: u32,
    /// Whether its KV cache holds everything before its next token.
    pub prefilled: bool,
    /// Tokens in its KV cache.
    pub cached: u32,
    pub generated: u32,
    /// KV blocks it holds.
    blocks: u64,
    /// The replica it runs on while admitted.
    replica: u32,
    pub record: RequestRecord,
}

impl Request {
    /// Tokens to prefill before decoding: the prompt and, after a preemption, the tokens made before it.
    fn prefill_length(&self) -> u32 {
        self.prompt + self.generated
    }
}

/// The requests of a run and the batching state.
#[derive(Clone, Debug)]
pub struct Scheduler {
    requests: Vec<Request>,
    /// Requests in arrival order; those before `arrived` have arrived.
    arrived: usize,
    waiting: VecDeque<usize>,
    /// Admitted requests, oldest first.
    running: Vec<usize>,
    policy: Policy,
    /// Per replica: KV blocks not held by a request.
    free_blocks: Vec<u64>,
    /// Per replica: its place among equally loaded replicas (see [`spread`]).
    rank: Vec<usize>,
    /// Per replica, with independent replicas: requests routed to it and not finished.
    outstanding: Vec<u32>,
    mtp: Option<Mtp>,
    rng: Xoshiro256PlusPlus,
    /// A recorded step's requests, served as recorded, once.
    fixed: Option<Vec<RequestStep>>,
    steps: u32,
}

impl Scheduler {
    /// `arrivals` (in arrival order) under `policy`; in a decode scenario
    /// their prompts are already in the KV cache when they arrive.
    pub fn new(arrivals: &[Arrival], phase: Phase, policy: Policy, mtp: Option<Mtp>, seed: u64) -> Scheduler {
        let requests = arrivals
            .iter()
            .map(|a| Request {
                prompt: a.prompt,
                target: a.output,
                prefilled: phase == Phase::Decode,
                cached: if phase == Phase::Decode { a.prompt } else { 0 },
                generated: 0,
                blocks: 0,
                replica: 0,
                record: RequestRecord { arrival: a.at, prompt_tokens: a.prompt, ..RequestRecord::default() },
            })
            .collect();
        Scheduler {
            requests,
            arrived: 0,
            waiting: VecDeque::new(),
            running: Vec::new(),
            policy,
            rank: spread(policy.replicas),
            outstanding: vec![0; policy.replicas.max(1) as usize],
            free_blocks: vec![
                policy.kv_blocks.unwrap_or(0) / policy.replicas.max(1) as u64;
                policy.replicas.max(1) as usize
            ],
            mtp,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ ACCEPTANCE_STREAM),
            fixed: None,
            steps: 0,
        }
    }

    /// The requests of one recorded step, all running, served as recorded
    /// once: each may make as many tokens as the step computes logits for.
    pub fn replaying(steps: &[RequestStep], mtp: Option<Mtp>, seed: u64) -> Scheduler {
        let arrivals: Vec<Arrival> = steps
            .iter()
            .map(|r| Arrival { at: Time::ZERO, prompt: r.cached + r.new_tokens, output: r.logits.max(1) })
            .collect();
        let policy = Policy {
            max_batch: steps.len() as u32,
            token_budget: None,
            block_tokens: 1,
            kv_blocks: None,
            replicas: 1,
            independent: false,
        };
        let mut s = Scheduler::new(&arrivals, Phase::Prefill, policy, mtp, seed);
        for (r, step) in s.requests.iter_mut().zip(steps) {
            // A decode or verification step: the request is past its prefill, its context cached.
            r.prefilled = step.cached > 0 && step.new_tokens == step.logits;
            r.cached = step.cached;
            if r.prefilled {
                r.prompt = step.cached;
            }
            // A prefill chunk that makes no token ends short of its prompt.
            r.prompt += u32::from(step.logits == 0);
            r.record.prompt_tokens = r.prompt;
        }
        s.arrived = s.requests.len();
        s.running = (0..s.requests.len()).collect();
        s.fixed = Some(steps.to_vec());
        s
    }

    /// Move the requests that have arrived by `now` to the queue (routed to
    /// a replica, if the replicas are independent); returns when the next one arrives.
    pub fn arrive(&mut self, now: Time) -> Option<Time> {
        while self.arrived < self.requests.len() && self.requests[self.arrived].record.arrival <= now {
            if self.routes_on_arrival() {
                let replica = (0..self.outstanding.len())
                    .min_by_key(|&r| (self.outstanding[r], self.rank[r]))
                    .expect("at least one replica");
                self.outstanding[replica] += 1;
                self.requests[self.arrived].replica = replica as u32;
            }
            self.waiting.push_back(self.arrived);
            self.arrived += 1;
        }
        self.requests.get(self.arrived).map(|r| r.record.arrival)
    }

    fn routes_on_arrival(&self) -> bool {
        self.policy.independent && self.policy.replicas > 1
    }

    /// The next step's requests and what each computes, at `now`, on every
    /// replica; empty when nothing can run (nothing waiting or running, or
    /// waiting for blocks that no running request will free).
    pub fn plan(&mut self, now: Time) -> Vec<(usize, RequestStep)> {
        self.plan_for(now, None)
    }

    /// The next step of replica `replica` alone (independent replicas).
    pub fn plan_replica(&mut self, now: Time, replica: u32) -> Vec<(usize, RequestStep)> {
        self.plan_for(now, Some(replica))
    }

    fn plan_for(&mut self, now: Time, only: Option<u32>) -> Vec<(usize, RequestStep)> {
        if let Some(fixed) = &self.fixed {
            if self.steps > 0 {
                return Vec::new();
            }
            for r in &mut self.requests {
                r.record.first_scheduled.get_or_insert(now);
            }
            return fixed.iter().copied().enumerate().collect();
        }
        let drafts = self.mtp.map_or(0, |m| m.draft_tokens);
        let replicas = self.policy.replicas.max(1) as usize;
        let mut budget = vec![self.policy.token_budget.map_or(u64::MAX, u64::from); replicas];
        let mut plan = Vec::new();
        // Decoding requests, oldest first.
        let mut i = 0;
        while i < self.running.len() {
            let id = self.running[i];
            if !self.requests[id].prefilled || only.is_some_and(|r| r != self.requests[id].replica) {
                i += 1;
                continue;
            }
            let tokens = 1 + drafts;
            let upto = self.requests[id].cached + tokens;
            let replica = self.requests[id].replica;
            let mut preempted_self = false;
            while !self.reserve(id, upto) {
                // The newest request of the same replica gives its blocks back.
                let newest = *self
                    .running
                    .iter()
                    .rev()
                    .find(|&&x| self.requests[x].replica == replica)
                    .expect("the request itself is running");
                self.preempt(newest);
                if newest == id {
                    preempted_self = true;
                    break;
                }
            }
            if preempted_self {
                continue;
            }
            let step = self.step_of(
                id,
                RequestStep { cached: self.requests[id].cached, new_tokens: tokens, logits: tokens, replica: None },
            );
            plan.push((id, step));
            budget[replica as usize] = budget[replica as usize].saturating_sub(tokens as u64);
            i += 1;
        }
        // Prefills under way, then new requests, while the budget and the cache allow.
        let on = |r: &Request| only.is_none_or(|x| x == r.replica);
        let continuing: Vec<usize> =
            self.running.iter().copied().filter(|&id| !self.requests[id].prefilled && on(&self.requests[id])).collect();
        for id in continuing {
            let replica = self.requests[id].replica as usize;
            if let Some(step) = self.prefill_chunk(id, budget[replica]) {
                budget[replica] -= step.new_tokens as u64;
                plan.push((id, step));
            }
        }
        let mut running_on = vec![0usize; replicas];
        for &id in &self.running {
            running_on[self.requests[id].replica as usize] += 1;
        }
        // Waiting requests in order. Routed ones (independent replicas) each
        // wait for their own replica, which closes at the first that does
        // not fit; the others go to the least loaded replica with room.
        let routed = self.routes_on_arrival();
        let mut closed = vec![false; replicas];
        let mut w = 0;
        while let Some(&id) = self.waiting.get(w) {
            let open = |r: usize| running_on[r] < self.policy.replica_batch() && budget[r] > 0;
            let replica = if routed {
                let r = self.requests[id].replica as usize;
                if only.is_some_and(|x| x as usize != r) || closed[r] || !open(r) {
                    closed[r] = true;
                    w += 1;
                    continue;
                }
                r
            } else {
                match (0..replicas).filter(|&r| open(r)).min_by_key(|&r| (running_on[r], self.rank[r])) {
                    Some(r) => r,
                    None => break,
                }
            };
            self.requests[id].replica = replica as u32;
            let step = if self.requests[id].prefilled {
                // Context already cached (a decode scenario): it joins the decoders.
                let upto = self.requests[id].cached + 1 + drafts;
                self.reserve(id, upto).then(|| {
                    let r = &self.requests[id];
                    self.step_of(
                        id,
                        RequestStep { cached: r.cached, new_tokens: 1 + drafts, logits: 1 + drafts, replica: None },
                    )
                })
            } else {
                self.prefill_chunk(id, budget[replica])
            };
            let Some(step) = step else {
                if !routed {
                    break;
                }
                closed[replica] = true;
                w += 1;
                continue;
            };
            self.waiting.remove(w);
            self.running.push(id);
            running_on[replica] += 1;
            self.requests[id].record.first_scheduled.get_or_insert(now);
            budget[replica] = budget[replica].saturating_sub(step.new_tokens as u64);
            plan.push((id, step));
        }
        plan
    }

    /// `step` with the request's replica named, where there are several.
    fn step_of(&self, id: usize, step: RequestStep) -> RequestStep {
        let replica = (self.policy.replicas > 1).then_some(self.requests[id].replica);
        RequestStep { replica, ..step }
    }

    /// The next prefill chunk of `id` within `budget` tokens, with its KV blocks reserved.
    fn prefill_chunk(&mut self, id: usize, budget: u64) -> Option<RequestStep> {
        let r = &self.requests[id];
        let left = r.prefill_length() - r.cached;
        let chunk = (left as u64).min(budget) as u32;
        if chunk == 0 || !self.reserve(id, r.cached + chunk) {
            return None;
        }
        let r = &self.requests[id];
        Some(self.step_of(
            id,
            RequestStep { cached: r.cached, new_tokens: chunk, logits: u32::from(chunk == left), replica: None },
        ))
    }

    /// Give `id` the blocks to hold `tokens` tokens, if there are enough free.
    fn reserve(&mut self, id: usize, tokens: u32) -> bool {
        let need = (tokens as u64).div_ceil(self.policy.block_tokens as u64);
        let held = self.requests[id].blocks;
        if need <= held {
            return true;
        }
        if self.policy.kv_blocks.is_some() {
            let free = &mut self.free_blocks[self.requests[id].replica as usize];
            if *free < need - held {
                return false;
            }
            *free -= need - held;
        }
        self.requests[id].blocks = need;
        true
    }

    fn release(&mut self, id: usize) {
        let r = &mut self.requests[id];
        if self.policy.kv_blocks.is_some() {
            self.free_blocks[r.replica as usize] += r.blocks;
        }
        r.blocks = 0;
        self.running.retain(|&x| x != id);
    }

    /// Take `id`'s blocks and send it back to the front of the queue, to recompute its cache.
    fn preempt(&mut self, id: usize) {
        self.release(id);
        let r = &mut self.requests[id];
        r.cached = 0;
        r.prefilled = false;
        r.record.preemptions += 1;
        self.waiting.push_front(id);
    }

    /// The tokens of step `plan` came out at `now`: a completed prefill
    /// makes one, a decode step one plus the drafts accepted. Returns the
    /// tokens made.
    pub fn tokens_out(&mut self, plan: &[(usize, RequestStep)], now: Time) -> u32 {
        self.steps += 1;
        let mut made_all = 0;
        for &(id, step) in plan {
            let r = &self.requests[id];
            let made = if r.prefilled {
                let accepted = match self.mtp {
                    // Drafts are checked in order; the first rejected one ends the run of accepted ones.
                    Some(mtp) => (0..mtp.draft_tokens).take_while(|_| self.rng.random_bool(mtp.acceptance)).count(),
                    None => 0,
                } as u32;
                (1 + accepted).min(r.target - r.generated)
            } else {
                u32::from(r.cached + step.new_tokens >= r.prefill_length())
            };
            let r = &mut self.requests[id];
            if r.prefilled {
                r.cached += made;
            } else {
                r.cached += step.new_tokens;
                r.prefilled = made > 0;
            }
            r.generated += made;
            r.record.tokens += made;
            for _ in 0..made {
                r.record.token_times.push(now);
            }
            if made > 0 {
                r.record.first_token.get_or_insert(now);
                r.record.last_token = Some(now);
            }
            made_all += made;
            if r.generated >= r.target {
                let replica = r.replica as usize;
                self.release(id);
                if self.routes_on_arrival() {
                    self.outstanding[replica] -= 1;
                }
            }
        }
        made_all
    }

    /// Whether every request has arrived and is done, or a recorded step has run.
    pub fn done(&self) -> bool {
        if self.fixed.is_some() {
            return self.steps > 0;
        }
        self.arrived == self.requests.len() && self.waiting.is_empty() && self.running.is_empty()
    }

    /// A request that waits for more KV blocks than the whole cache has.
    pub fn stuck(&self) -> Option<&Request> {
        let total = self.policy.kv_blocks? / self.policy.replicas.max(1) as u64;
        self.waiting.iter().map(|&id| &self.requests[id]).find(|r| {
            let need = (r.prefill_length() as u64 + 1).div_ceil(self.policy.block_tokens as u64);
            need > total
        })
    }

    /// Requests that ended short of their tokens though the run was over.
    pub fn unfinished(&self) -> Option<&Request> {
        if self.fixed.is_some() {
            return None;
        }
        self.requests.iter().find(|r| r.generated < r.target)
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.requests.iter().map(|r| r.record.clone()).collect()
    }

    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// KV-cache tokens the busiest of `replicas` data-parallel replicas
    /// holds at the end if every request ran at once, with requests dealt to
    /// replicas as steps deal them.
    pub fn busiest_replica_tokens(&self, replicas: u32) -> u64 {
        let mut held = vec![0u64; replicas.max(1) as usize];
        for (i, r) in self.requests.iter().enumerate() {
            held[replica_of(i, self.requests.len(), replicas)] += (r.prompt + r.target) as u64;
        }
        held.into_iter().max().unwrap_or(0)
    }
}

/// Per replica, its place in the order equally loaded replicas are chosen
/// in: bit-reversed indices, so that the first few requests of a batch go
/// to replicas far apart (over the cards, not crowding the first).
fn spread(replicas: u32) -> Vec<usize> {
    let n = replicas.max(1) as usize;
    let bits = n.next_power_of_two().trailing_zeros();
    let mut order: Vec<usize> = (0..n.next_power_of_two())
        .map(|i| if bits == 0 { 0 } else { i.reverse_bits() >> (usize::BITS - bits) })
        .collect();
    order.retain(|&r| r < n);
    let mut rank = vec![0; n];
    for (place, &r) in order.iter().enumerate() {
        rank[r] = place;
    }
    rank
}

/// The scenario's batch: `batch` requests at time zero, lengths drawn from `seed`.
pub fn batch_arrivals(s: &Scenario, seed: u64) -> Vec<Arrival> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ LENGTH_STREAM);
    (0..s.batch).map(|_| draw_lengths(s, Time::ZERO, &mut rng)).collect()
}

/// One request arriving at `at`, its lengths drawn from the scenario's distributions.
pub fn draw_lengths(s: &Scenario, at: Time, rng: &mut Xoshiro256PlusPlus) -> Arrival {
    let prompt = s.context_tokens.draw(rng);
    let output = s.output_tokens.draw(rng);
    Arrival { at, prompt, output }
}

/// The seeded stream request lengths are drawn from.
pub fn length_rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ LENGTH_STREAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, prompt: u32, output: u32) -> Arrival {
        Arrival { at: Time::from_ps(ms * 1_000_000_000), prompt, output }
    }

    fn policy(max_batch: u32, token_budget: Option<u32>, kv_blocks: Option<u64>) -> Policy {
        Policy { max_batch, token_budget, block_tokens: 16, kv_blocks, replicas: 1, independent: false }
    }

    /// Run steps of `step_ms` each until done; returns the plans.
    fn serve(s: &mut Scheduler, step_ms: u64) -> Vec<Vec<(usize, RequestStep)>> {
        let mut now = Time::ZERO;
        let mut plans = Vec::new();
        for _ in 0..10_000 {
            let next = s.arrive(now);
            let plan = s.plan(now);
            if plan.is_empty() {
                match next {
                    Some(t) => {
                        now = t;
                        continue;
                    }
                    None => break,
                }
            }
            now += Time::from_ps(step_ms * 1_000_000_000);
            s.tokens_out(&plan, now);
            plans.push(plan);
        }
        plans
    }

    #[test]
    fn long_prompts_are_prefilled_in_chunks_beside_the_decoders() {
        let mut s =
            Scheduler::new(&[at(0, 100, 3), at(1, 300, 2)], Phase::Prefill, policy(8, Some(128), None), None, 1);
        let plans = serve(&mut s, 10);
        // Step 0: request 0's prompt (100). Step 1: it decodes (1) and request 1 takes 127 of its 300.
        assert_eq!(plans[0], vec![(0, RequestStep { cached: 0, new_tokens: 100, logits: 1, replica: None })]);
        assert_eq!(plans[1][0], (0, RequestStep { cached: 100, new_tokens: 1, logits: 1, replica: None }));
        assert_eq!(plans[1][1], (1, RequestStep { cached: 0, new_tokens: 127, logits: 0, replica: None }));
        assert!(plans.iter().all(|p| p.iter().map(|(_, r)| r.new_tokens).sum::<u32>() <= 128));
        assert!(s.done() && s.unfinished().is_none());
        assert_eq!(s.records()[1].tokens, 2);
    }

    #[test]
    fn a_full_cache_preempts_the_newest_and_everyone_still_finishes() {
        // 4 requests of 40 + 40 tokens need 5 blocks each at the end; 12 blocks hold two of them.
        let arrivals: Vec<Arrival> = (0..4).map(|_| at(0, 40, 40)).collect();
        let mut s = Scheduler::new(&arrivals, Phase::Prefill, policy(4, None, Some(12)), None, 1);
        serve(&mut s, 10);
        assert!(s.done() && s.unfinished().is_none());
        let records = s.records();
        assert!(records.iter().all(|r| r.tokens == 40));
        assert!(records.iter().map(|r| r.preemptions).sum::<u32>() > 0, "the cache was too small for all four");
        assert_eq!(s.free_blocks, vec![12], "every block is given back");
    }

    #[test]
    fn replicas_have_their_own_budget_batch_and_cache_and_take_the_least_loaded_first() {
        // Two replicas, 100 tokens a step each, 2 requests each at most, 10 blocks of 16 each.
        let arrivals: Vec<Arrival> = (0..5).map(|_| at(0, 100, 3)).collect();
        let policy = Policy {
            max_batch: 4,
            token_budget: Some(100),
            block_tokens: 16,
            kv_blocks: Some(20),
            replicas: 2,
            independent: false,
        };
        let mut s = Scheduler::new(&arrivals, Phase::Prefill, policy, None, 1);
        s.arrive(Time::ZERO);
        let first = s.plan(Time::ZERO);
        // Each replica spends its own budget on one whole prompt: two admitted, not one.
        let replicas: Vec<Option<u32>> = first.iter().map(|(_, r)| r.replica).collect();
        assert_eq!(replicas, vec![Some(0), Some(1)]);
        assert!(first.iter().all(|(_, r)| r.new_tokens == 100));
        // Each took 7 of its replica's 10 blocks: a second prompt does not fit beside it.
        assert_eq!(s.free_blocks, vec![3, 3]);
        s.tokens_out(&first, Time::from_ps(1));
        let mut s2 = s.clone();
        let plans = serve(&mut s2, 10);
        for plan in &plans {
            for replica in 0..2 {
                let on = plan.iter().filter(|(_, r)| r.replica == Some(replica));
                assert!(on.clone().count() <= 2, "at most its share of the batch");
                assert!(on.map(|(_, r)| r.new_tokens).sum::<u32>() <= 100, "within its own budget");
            }
        }
        assert!(s2.done() && s2.unfinished().is_none());
        assert_eq!(s2.free_blocks, vec![10, 10], "every block is given back to its replica");
    }

    #[test]
    fn independent_replicas_route_on_arrival_to_the_least_loaded_and_plan_apart() {
        // Two independent replicas; request 0 is long, so replica 0 stays busy
        // while the short ones arriving later go to replica 1.
        let arrivals = [at(0, 10, 50), at(0, 10, 2), at(5, 10, 2), at(30, 10, 2)];
        let policy = Policy {
            max_batch: 8,
            token_budget: Some(64),
            block_tokens: 16,
            kv_blocks: None,
            replicas: 2,
            independent: true,
        };
        let mut s = Scheduler::new(&arrivals, Phase::Prefill, policy, None, 1);
        s.arrive(Time::ZERO);
        assert_eq!(s.outstanding, vec![1, 1], "the first two go one to each replica");
        // Each replica plans only its own requests.
        let on_0 = s.plan_replica(Time::ZERO, 0);
        let on_1 = s.plan_replica(Time::ZERO, 1);
        assert_eq!(on_0.iter().map(|&(id, _)| id).collect::<Vec<_>>(), vec![0]);
        assert_eq!(on_1.iter().map(|&(id, _)| id).collect::<Vec<_>>(), vec![1]);
        assert!(on_0.iter().chain(&on_1).all(|(id, r)| r.replica == Some(*id as u32)));
        // Replica 1 steps twice (request 1's prefill and last token) before request 2
        // arrives, so request 2 goes to replica 1, which has nothing outstanding.
        s.tokens_out(&on_1, Time::from_ps(1_000_000_000));
        let again = s.plan_replica(Time::from_ps(1_000_000_000), 1);
        s.tokens_out(&again, Time::from_ps(2_000_000_000));
        assert_eq!(s.outstanding, vec![1, 0], "request 1 finished on replica 1");
        s.arrive(Time::from_ps(5_000_000_000));
        assert_eq!(s.outstanding, vec![1, 1], "request 2 went to the idle replica");
        assert_eq!(s.requests[2].replica, 1);
        // Replica 0 never planned request 2, though it had room.
        let on_0 = s.plan_replica(Time::from_ps(5_000_000_000), 0);
        assert!(on_0.iter().all(|&(id, _)| id == 0));
    }

    #[test]
    fn requests_wait_for_their_arrival_and_the_batch_limit() {
        let arrivals = [at(0, 10, 5), at(0, 10, 5), at(0, 10, 5), at(500, 10, 5)];
        let mut s = Scheduler::new(&arrivals, Phase::Prefill, policy(2, None, None), None, 1);
        let plans = serve(&mut s, 10);
        assert!(plans.iter().all(|p| p.len() <= 2));
        let r = s.records();
        assert!(r[2].first_scheduled > r[0].first_scheduled, "the third waits for a place");
        assert!(r[3].first_scheduled.unwrap() >= Time::from_ps(500_000_000_000), "the fourth waits for its arrival");
    }
}
