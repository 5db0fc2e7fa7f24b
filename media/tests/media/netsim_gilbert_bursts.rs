//! Gilbert-Elliott loss: losses come in bursts of the configured mean
//! length, at the configured long-run rate.

use parley_media::netsim::LossModel;

fn loss_pattern(model: LossModel, n: u32) -> Vec<bool> {
    crate::common::arrivals(model, 99, n)
        .into_iter()
        .map(|arrived| !arrived)
        .collect()
}

/// Lengths of the runs of consecutive losses.
fn bursts(lost: &[bool]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut run = 0;
    for &l in lost {
        if l {
            run += 1;
        } else if run > 0 {
            out.push(run);
            run = 0;
        }
    }
    if run > 0 {
        out.push(run);
    }
    out
}

#[test]
fn mean_burst_length_is_within_ten_percent_of_configured() {
    for (loss, burst) in [(0.10, 3.0), (0.20, 3.0), (0.10, 2.0), (0.05, 4.0)] {
        let lost = loss_pattern(LossModel::gilbert(loss, burst), 100_000);
        let runs = bursts(&lost);
        let mean = runs.iter().sum::<usize>() as f64 / runs.len() as f64;
        let rate = lost.iter().filter(|&&l| l).count() as f64 / lost.len() as f64;
        assert!(
            (mean - burst).abs() / burst < 0.10,
            "loss {loss} burst {burst}: mean burst {mean}"
        );
        assert!((rate - loss).abs() < 0.01, "loss {loss}: measured {rate}");
    }
}

#[test]
fn bursty_loss_has_longer_runs_than_random_loss_at_the_same_rate() {
    let bursty = bursts(&loss_pattern(LossModel::gilbert(0.1, 3.0), 50_000));
    let random = bursts(&loss_pattern(LossModel::Bernoulli { loss: 0.1 }, 50_000));
    let mean = |r: &[usize]| r.iter().sum::<usize>() as f64 / r.len() as f64;
    // Random loss at 10 % has mean run 1 / 0.9 = 1.11.
    assert!(mean(&random) < 1.2, "random mean run {}", mean(&random));
    assert!(mean(&bursty) > 2.5, "bursty mean run {}", mean(&bursty));
}
