//! The failure-mode catalogues of the simulated models: for each process fault the simulator
//! can inject, how it shows in the model's signals, what a maintenance engineer would do and
//! how soon. Mode ids are the [`FaultKind`](crate::FaultKind) names, so advice can be scored
//! against the ground truth; the signatures are written from the physics (which signals the
//! fault moves, and which one only it moves), not fitted to simulated data.

use doppel_model::{FailureMode, SignalDirection, SignalPattern, Urgency};

use SignalDirection::{Falling, Noisy, Rising, Shift};

fn pattern(signal: &str, direction: SignalDirection, weight: f64) -> SignalPattern {
    SignalPattern {
        signal: signal.into(),
        direction,
        weight,
    }
}

struct Mode<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    signature: &'a [(&'a str, SignalDirection, f64)],
    actions: &'a [&'a str],
    horizon_h: f64,
    urgency: Urgency,
    consequence: &'a str,
}

fn build(m: Mode<'_>) -> FailureMode {
    FailureMode {
        id: m.id.into(),
        name: m.name.into(),
        description: m.description.into(),
        signature: m
            .signature
            .iter()
            .map(|&(s, d, w)| pattern(s, d, w))
            .collect(),
        actions: m.actions.iter().map(|a| a.to_string()).collect(),
        typical_horizon_h: Some(m.horizon_h),
        urgency: m.urgency,
        consequence: m.consequence.into(),
    }
}

/// Centrifugal pump and motor.
pub(crate) fn pump() -> Vec<FailureMode> {
    vec![
        build(Mode {
            id: "bearing_wear",
            name: "Drive-end bearing wear",
            description: "Spalling of a rolling-element bearing: energy in the bearing-defect \
                          vibration band first, then friction heat at the bearing.",
            signature: &[
                ("vib_bearing", Rising, 3.0),
                ("bearing_temp_de", Rising, 1.5),
                ("bearing_temp_nde", Rising, 0.5),
                ("vib_rms", Rising, 0.5),
            ],
            actions: &[
                "Inspect the drive-end bearing (vibration spectrum, grease condition, noise)",
                "Re-lubricate the bearing if the grease is degraded",
                "Replace the bearing at the next planned stop",
            ],
            horizon_h: 168.0,
            urgency: Urgency::High,
            consequence: "the bearing seizes: the pump trips, the shaft, seal and impeller may \
                          be damaged and the loop loses circulation",
        }),
        build(Mode {
            id: "cavitation",
            name: "Cavitation",
            description: "Suction pressure too low (clogged strainer, low tank level): vapour \
                          bubbles collapse in the impeller.",
            signature: &[
                ("suction_pressure", Falling, 2.0),
                ("vib_broadband", Rising, 2.0),
                ("discharge_pressure", Falling, 1.0),
                ("flow", Noisy, 1.0),
            ],
            actions: &[
                "Clean the suction strainer",
                "Check the suction tank level and that the suction valve is fully open",
                "Reduce the pump speed until the suction side is fixed",
            ],
            horizon_h: 720.0,
            urgency: Urgency::Medium,
            consequence: "impeller erosion and pitting, lower head and flow, seal and bearing \
                          damage from the vibration",
        }),
        build(Mode {
            id: "misalignment",
            name: "Shaft misalignment",
            description: "Pump and motor shafts out of line at the coupling: twice-running-speed \
                          vibration, extra bearing load and heat.",
            signature: &[
                ("vib_2x", Rising, 3.0),
                ("vib_1x", Rising, 1.0),
                ("bearing_temp_de", Rising, 0.5),
                ("bearing_temp_nde", Rising, 0.5),
                ("motor_power", Rising, 0.5),
            ],
            actions: &[
                "Check the coupling alignment (laser) and for soft foot",
                "Realign pump and motor, check the coupling for wear",
            ],
            horizon_h: 720.0,
            urgency: Urgency::Medium,
            consequence: "accelerated bearing and coupling wear, seal leaks, higher energy use",
        }),
        build(Mode {
            id: "seal_leak",
            name: "Mechanical seal leak",
            description: "The mechanical seal lets pumped water out of the loop: delivered \
                          flow and head drop.",
            signature: &[
                ("flow", Falling, 2.0),
                ("discharge_pressure", Falling, 1.5),
                ("motor_power", Shift, 0.5),
            ],
            actions: &[
                "Inspect the mechanical seal for leakage",
                "Check the loop's make-up water consumption",
                "Replace the seal",
            ],
            horizon_h: 336.0,
            urgency: Urgency::High,
            consequence: "loss of loop water and pressure, water damage, dry running of the \
                          seal faces",
        }),
        build(Mode {
            id: "motor_overheating",
            name: "Motor overheating",
            description: "The motor runs hot (voltage unbalance, blocked cooling, shorted \
                          turns): winding temperature and current rise.",
            signature: &[
                ("motor_winding_temp", Rising, 3.0),
                ("motor_current", Rising, 1.5),
                ("motor_power", Rising, 1.0),
            ],
            actions: &[
                "Check the supply voltage balance between phases",
                "Clean the motor's cooling fins and fan cover",
                "Measure the winding insulation resistance",
            ],
            horizon_h: 168.0,
            urgency: Urgency::High,
            consequence: "insulation ageing doubles with every 10 K; winding burnout and an \
                          unplanned motor replacement",
        }),
    ]
}

/// Office chiller and air-handling unit.
pub(crate) fn chiller() -> Vec<FailureMode> {
    vec![
        build(Mode {
            id: "refrigerant_leak",
            name: "Refrigerant leak",
            description: "Refrigerant escapes: evaporating pressure, capacity and efficiency \
                          fall until the low-pressure switch trips the chiller.",
            signature: &[
                ("cop", Falling, 2.0),
                ("supply_water_temp", Rising, 2.0),
                ("return_water_temp", Rising, 1.0),
                ("zone_temp", Rising, 0.5),
            ],
            actions: &[
                "Leak-test the refrigerant circuit",
                "Repair the leak and recharge to the nameplate charge",
            ],
            horizon_h: 72.0,
            urgency: Urgency::High,
            consequence: "the chiller trips on low pressure and the floor loses cooling; \
                          refrigerant emissions",
        }),
        build(Mode {
            id: "fouled_coil",
            name: "Fouled cooling coil",
            description: "Dirt on the air-side fins insulates the coil: the supply air leaves \
                          warmer and the damper opens further for the same cooling.",
            signature: &[
                ("supply_air_temp", Rising, 2.0),
                ("damper_position", Rising, 1.5),
                ("zone_temp", Rising, 0.5),
            ],
            actions: &[
                "Clean the cooling coil",
                "Replace the air filters upstream of the coil",
            ],
            horizon_h: 720.0,
            urgency: Urgency::Low,
            consequence: "less cooling at peak load, warm zones, higher fan and chiller energy",
        }),
        build(Mode {
            id: "stuck_damper",
            name: "Stuck supply-air damper",
            description: "The damper actuator failed and the spring pulls the damper toward \
                          closed: less air, the zone warms.",
            signature: &[
                ("damper_position", Falling, 2.0),
                ("zone_temp", Rising, 1.5),
                ("supply_air_temp", Shift, 0.5),
            ],
            actions: &[
                "Check the damper actuator, its supply and its linkage",
                "Replace the actuator",
            ],
            horizon_h: 48.0,
            urgency: Urgency::Medium,
            consequence: "the zone overheats during occupancy; comfort complaints",
        }),
    ]
}

/// MRI helium compressor.
pub(crate) fn mri() -> Vec<FailureMode> {
    vec![
        build(Mode {
            id: "helium_leak",
            name: "Helium leak",
            description: "Helium escapes from the compressor circuit: both pressures fall, \
                          then refrigeration capacity and the cold head warms.",
            signature: &[
                // Worn compressors lower the supply pressure too; only a leak lowers both.
                ("helium_return_pressure", Falling, 2.5),
                ("helium_supply_pressure", Falling, 1.5),
                ("compressor_power", Falling, 0.5),
                ("coldhead_temp", Rising, 1.0),
            ],
            actions: &[
                "Leak-test the helium circuit (sniffer at couplings and flex lines)",
                "Call the vendor's service to repair and top up the helium",
            ],
            horizon_h: 168.0,
            urgency: Urgency::Critical,
            consequence: "the compressor trips on low pressure, the cold head warms and the \
                          magnet boils off helium; risk of a quench and days of downtime",
        }),
        build(Mode {
            id: "compressor_degradation",
            name: "Compressor and adsorber degradation",
            description: "Worn compressor valves and a saturated adsorber: the pressure split \
                          narrows, the compressor works harder and its oil runs hotter.",
            signature: &[
                ("oil_temp", Rising, 1.5),
                ("helium_return_pressure", Rising, 1.0),
                ("helium_supply_pressure", Falling, 1.0),
                ("compressor_power", Rising, 1.0),
                ("coldhead_temp", Rising, 1.0),
            ],
            actions: &[
                "Replace the adsorber",
                "Have the compressor capsule serviced",
            ],
            horizon_h: 336.0,
            urgency: Urgency::High,
            consequence: "the compressor fails, the cold head warms and the magnet boils off \
                          helium",
        }),
    ]
}

#[cfg(test)]
mod tests {
    use crate::{AssetKind, FaultKind};

    /// Every process fault the simulator can inject has a catalogued mode of the same id,
    /// and every catalogue validates against its model (signals exist, weights positive).
    #[test]
    fn every_process_fault_is_catalogued_and_valid() {
        for kind in AssetKind::ALL {
            let model = kind.model();
            model
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", model.id));
            for f in kind.process_faults() {
                assert!(
                    model.failure_mode(f.as_str()).is_some(),
                    "{} has no failure mode for {f}",
                    model.id
                );
            }
            for m in &model.failure_modes {
                assert!(
                    FaultKind::ALL.iter().any(|k| k.as_str() == m.id),
                    "{} is not a simulated fault",
                    m.id
                );
            }
        }
    }
}
