//! The error taxonomy as the state machine sees it.

use labflow_core::StepError;

#[test]
fn error_names_are_the_state_machine_names() {
    let cases = [
        (StepError::InvalidInput("a".into()), "labflow.InvalidInput"),
        (StepError::Transient("b".into()), "labflow.Transient"),
        (StepError::LockHeld("c".into()), "labflow.LockHeld"),
        (StepError::NotOwned("d".into()), "labflow.NotOwned"),
        (
            StepError::ComponentFailed("e".into()),
            "labflow.ComponentFailed",
        ),
        (
            StepError::DeadlineExceeded("f".into()),
            "labflow.DeadlineExceeded",
        ),
    ];
    for (err, name) in cases {
        assert_eq!(err.name(), name);
        assert!(StepError::ALL_NAMES.contains(&name));
        let message = err.message().to_string();
        let diagnostic: lambda_runtime::Diagnostic = err.into();
        assert_eq!(diagnostic.error_type, name);
        assert_eq!(diagnostic.error_message, message);
    }
}
