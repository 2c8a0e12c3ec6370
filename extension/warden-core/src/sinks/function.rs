//! Who the findings are about: the monitored function and where it runs, as the AWS
//! destinations name it.

/// The monitored function.
#[derive(Debug, Clone, Default)]
pub struct MonitoredFunction {
    /// AWS region.
    pub region: String,
    /// Account id (from the Extensions API registration).
    pub account: String,
    /// Function name.
    pub function: String,
}

impl MonitoredFunction {
    /// The function's ARN.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account, self.function
        )
    }
}
