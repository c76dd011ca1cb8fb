//! A fixed synthetic system for measuring the engine itself: a ring of
//! components passing tokens, each hop after a pseudo-random delay, so the
//! queue holds many events at scattered times as in a real model.

use crate::{Component, ComponentId, Ctx, System, SystemBuilder, Time};

/// A token travelling round the ring with the number of hops it has left.
#[derive(Clone, Copy, Debug)]
pub struct Token {
    hops_left: u64,
    state: u64,
}

#[derive(Debug)]
struct Station {
    next: ComponentId,
    handled: u64,
}

impl Component<Token> for Station {
    fn kind(&self) -> &'static str {
        "bench.station"
    }
    fn handle(&mut self, token: Token, ctx: &mut Ctx<'_, Token>) {
        self.handled += 1;
        if token.hops_left > 1 {
            // A 64-bit LCG step; delays of 1..=1024 ns keep the heap busy.
            let state = token.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let delay = Time::from_ns(1 + (state >> 54));
            ctx.send(self.next, delay, Token { hops_left: token.hops_left - 1, state });
        }
    }
}

/// `stations` components in a ring with `tokens` tokens in flight, handling
/// exactly `events` events in all.
pub fn ring(stations: u32, tokens: u64, events: u64) -> System<Token> {
    assert!(stations > 0 && tokens > 0 && events >= tokens);
    let mut builder = SystemBuilder::new();
    let ids: Vec<ComponentId> = (0..stations).map(|i| builder.reserve(format!("station{i}"))).collect();
    for (i, &id) in ids.iter().enumerate() {
        let next = ids[(i + 1) % ids.len()];
        builder.place(id, Station { next, handled: 0 }).expect("each slot placed once");
    }
    for t in 0..tokens {
        let hops = events / tokens + u64::from(t < events % tokens);
        let at = ids[(t % u64::from(stations)) as usize];
        builder.post(Time::ZERO, at, Token { hops_left: hops, state: t + 1 });
    }
    builder.build().expect("the ring is fully wired")
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_exactly_the_requested_events() {
        let mut system = super::ring(8, 5, 1_003);
        system.run_to_end();
        assert_eq!(system.events(), 1_003);
    }
}
