//! Bernoulli loss: the measured rate matches the configured one, and a run
//! repeats exactly from its seed.

use parley_media::netsim::LossModel;

fn survivors(loss: f64, seed: u64, n: u32) -> Vec<bool> {
    crate::common::arrivals(LossModel::Bernoulli { loss }, seed, n)
}

#[test]
fn measured_loss_is_within_one_point_of_configured_over_100k_packets() {
    for configured in [0.01, 0.05, 0.10, 0.20, 0.30] {
        let arrived = survivors(configured, 1, 100_000);
        let lost = arrived.iter().filter(|&&a| !a).count();
        let measured = lost as f64 / arrived.len() as f64;
        assert!(
            (measured - configured).abs() < 0.01,
            "configured {configured}, measured {measured}"
        );
    }
}

#[test]
fn same_seed_repeats_and_other_seed_differs() {
    let a = survivors(0.1, 7, 10_000);
    let b = survivors(0.1, 7, 10_000);
    let c = survivors(0.1, 8, 10_000);
    assert_eq!(a, b);
    assert_ne!(a, c);
}
