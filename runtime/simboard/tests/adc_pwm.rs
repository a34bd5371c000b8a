//! The simulated ADC and PWM controller through `SimBoard::open`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{adc, ask, eventually, open, pwm, reference_board};
use warden_ipc::broker::{Access, Detail};
use warden_ipc::sim::{PwmState, SimError, SimReply, SimRequest};
use warden_simboard::SimBoardError;

const ADC: &str = "SIM_ADC_CONTROLLER0";
const PWM: &str = "SIM_PWM_CONTROLLER0";

#[test]
fn an_adc_samples_what_the_outside_world_set() {
    let board = reference_board();
    let (ch, access) = open(&board, "meter", ADC, adc());
    assert_eq!(
        access,
        Access::Sim {
            detail: Detail::Adc {
                channels: 4,
                bits: 12,
                reference_microvolts: 2_500_000
            }
        }
    );
    assert_eq!(
        ask(&ch, &SimRequest::AdcSample { channel: 1 }),
        SimReply::Sample(0),
        "0 until set"
    );
    board.adc_set(ADC, 1, 2048).unwrap();
    board.adc_set(ADC, 3, 4095).unwrap();
    assert_eq!(
        ask(&ch, &SimRequest::AdcSample { channel: 1 }),
        SimReply::Sample(2048)
    );
    assert_eq!(
        ask(&ch, &SimRequest::AdcSample { channel: 3 }),
        SimReply::Sample(4095)
    );
    assert!(matches!(
        ask(&ch, &SimRequest::AdcSample { channel: 4 }),
        SimReply::Error(SimError::InvalidArgument(m)) if m.contains("no channel 4")
    ));
    let err = board.adc_set(ADC, 0, 4096).unwrap_err();
    assert_eq!(
        err.to_string(),
        "raw value 4096 does not fit the 12-bit ADC `SIM_ADC_CONTROLLER0` (at most 4095)"
    );
    assert!(matches!(
        board.adc_set(ADC, 9, 1),
        Err(SimBoardError::NoChannel {
            channel: 9,
            channels: 4,
            ..
        })
    ));
    let view = board.view();
    assert_eq!(view.adc[0].raw, [0, 2048, 0, 4095]);
    assert_eq!(view.adc[0].open_by, ["meter"]);
    drop(ch);
    eventually("the handle's release", || {
        board.view().adc[0].open_by.is_empty()
    });
}

#[test]
fn a_pwm_controller_records_what_the_app_applied() {
    let board = reference_board();
    let (ch, access) = open(&board, "dimmer", PWM, pwm());
    assert_eq!(
        access,
        Access::Sim {
            detail: Detail::Pwm { channels: 4 }
        }
    );
    assert_eq!(board.pwm_state(PWM, 2).unwrap(), None);
    let state = PwmState {
        period_ns: 1_000_000,
        duty_ns: 250_000,
        inversed: false,
        enabled: true,
    };
    assert_eq!(
        ask(&ch, &SimRequest::PwmApply { channel: 2, state }),
        SimReply::Done
    );
    assert_eq!(board.pwm_state(PWM, 2).unwrap(), Some(state));
    let too_long = PwmState {
        duty_ns: 1_000_001,
        ..state
    };
    assert!(matches!(
        ask(&ch, &SimRequest::PwmApply { channel: 2, state: too_long }),
        SimReply::Error(SimError::InvalidArgument(m)) if m.contains("1000001")
    ));
    assert_eq!(
        board.pwm_state(PWM, 2).unwrap(),
        Some(state),
        "the refused state was not applied"
    );
    assert!(matches!(
        ask(&ch, &SimRequest::PwmApply { channel: 4, state }),
        SimReply::Error(SimError::InvalidArgument(_))
    ));
    assert!(matches!(
        board.pwm_state(PWM, 4),
        Err(SimBoardError::NoChannel { .. })
    ));
    let view = board.view();
    assert_eq!(view.pwm[0].channels, [None, None, Some(state), None]);
}

#[test]
fn adc_and_pwm_handles_may_be_open_several_times() {
    let board = reference_board();
    let (a, _) = open(&board, "one", PWM, pwm());
    let (b, _) = open(&board, "two", PWM, pwm());
    let state = PwmState {
        period_ns: 100,
        duty_ns: 100,
        inversed: true,
        enabled: false,
    };
    assert_eq!(
        ask(&a, &SimRequest::PwmApply { channel: 0, state }),
        SimReply::Done
    );
    assert_eq!(
        ask(&b, &SimRequest::PwmApply { channel: 1, state }),
        SimReply::Done
    );
    let mut holders = board.view().pwm[0].open_by.clone();
    holders.sort();
    assert_eq!(holders, ["one", "two"]);
}
