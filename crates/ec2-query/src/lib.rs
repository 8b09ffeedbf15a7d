//! The few Amazon EC2 calls labflow makes (subnets, security groups, volumes), over the EC2
//! Query API: a form-encoded POST signed with SigV4, answered in XML
//! (docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html).
//!
//! Why not aws-sdk-ec2: on our 2-core build machine that one crate compiles for 272 s
//! (`cargo build --timings`, debug, v1.274.0; aws-sdk-elasticloadbalancingv2 took 27 s in the
//! same build), for nine operations (issue 23: a lean build). The signing, credentials and endpoint
//! come from the same `SdkConfig` the SDK clients use.

mod xml;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_types::SdkConfig;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub use xml::{SecurityGroup, Subnet, Volume};

/// The EC2 API version every request names.
const API_VERSION: &str = "2016-11-15";
/// How long one call may take; the callers retry on their own schedule.
const TIMEOUT: Duration = Duration::from_secs(30);

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    /// EC2 answered with an error (`InvalidVolume.NotFound`, `DependencyViolation`, ...).
    #[error("{action}: {code}: {message}")]
    Service {
        action: String,
        status: u16,
        code: String,
        message: String,
    },
    /// No answer (connection, timeout) or an unreadable one.
    #[error("{action}: {message}")]
    Transport { action: String, message: String },
    #[error("EC2 client: {0}")]
    Config(String),
}

impl Ec2Error {
    /// The EC2 error code, for service errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Ec2Error::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Throttling, 5xx and transport failures: worth another try later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Ec2Error::Service { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "Throttling" | "RequestLimitExceeded" | "InternalError" | "Unavailable"
                    )
            }
            Ec2Error::Transport { .. } => true,
            Ec2Error::Config(_) => false,
        }
    }
}

/// A filter of a Describe call: `name` matches any of `values` (`tag:<key>` for a tag).
#[derive(Debug, Clone)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(name: impl Into<String>, values: &[&str]) -> Self {
        Filter {
            name: name.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// An EC2 client bound to one region and endpoint.
#[derive(Clone, Debug)]
pub struct Ec2 {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    region: String,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
}

impl Ec2 {
    /// From an SDK configuration: its region, credentials and endpoint override (else the
    /// regional endpoint `https://ec2.<region>.amazonaws.com`).
    pub fn new(config: &SdkConfig) -> Result<Self, Ec2Error> {
        let region = config
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| Ec2Error::Config("no region configured".into()))?;
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| Ec2Error::Config("no credentials provider configured".into()))?;
        let endpoint = config
            .endpoint_url()
            .map(|e| e.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
        let host = endpoint
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
            .ok_or_else(|| Ec2Error::Config(format!("not an endpoint URL: {endpoint}")))?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| Ec2Error::Config(e.to_string()))?;
        Ok(Ec2 {
            http,
            endpoint,
            host,
            region,
            credentials,
        })
    }

    /// One call: `Action=<action>&Version=...&<params>`, signed; the answer's XML text.
    async fn call(&self, action: &str, params: &[(String, String)]) -> Result<String, Ec2Error> {
        let transport = |message: String| Ec2Error::Transport {
            action: action.to_string(),
            message,
        };
        let mut body = format!("Action={action}&Version={API_VERSION}");
        for (k, v) in params {
            body.push('&');
            body.push_str(&utf8_percent_encode(k, FORM).to_string());
            body.push('=');
            body.push_str(&utf8_percent_encode(v, FORM).to_string());
        }
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| Ec2Error::Config(format!("credentials: {e}")))?;
        let identity = credentials.into();
        let signing = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Ec2Error::Config(format!("signing: {e}")))?
            .into();
        let url = format!("{}/", self.endpoint);
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = [("host", self.host.as_str()), ("content-type", content_type)];
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| Ec2Error::Config(format!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &signing)
            .map_err(|e| Ec2Error::Config(format!("signing: {e}")))?
            .into_parts();
        let mut request = http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("content-type", content_type)
            .body(body)
            .map_err(|e| Ec2Error::Config(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request).map_err(|e| transport(e.to_string()))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| transport(e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let (code, message) = xml::error(&text).unwrap_or_else(|| {
            (
                format!("HTTP {status}"),
                text.chars().take(200).collect::<String>(),
            )
        });
        Err(Ec2Error::Service {
            action: action.to_string(),
            status,
            code,
            message,
        })
    }

    /// A Describe call over every page (`NextToken`), each page read by `parse`.
    async fn describe_all<T>(
        &self,
        action: &str,
        filters: &[Filter],
        parse: impl Fn(&str) -> Result<(Vec<T>, Option<String>), String>,
    ) -> Result<Vec<T>, Ec2Error> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = filter_params(filters);
            if let Some(t) = &token {
                params.push(("NextToken".into(), t.clone()));
            }
            let text = self.call(action, &params).await?;
            let (items, next) = parse(&text).map_err(|message| Ec2Error::Transport {
                action: action.to_string(),
                message,
            })?;
            all.extend(items);
            match next.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    pub async fn describe_subnets(&self, filters: &[Filter]) -> Result<Vec<Subnet>, Ec2Error> {
        self.describe_all("DescribeSubnets", filters, xml::subnets)
            .await
    }

    pub async fn describe_security_groups(
        &self,
        filters: &[Filter],
    ) -> Result<Vec<SecurityGroup>, Ec2Error> {
        self.describe_all("DescribeSecurityGroups", filters, xml::security_groups)
            .await
    }

    pub async fn describe_volumes(&self, filters: &[Filter]) -> Result<Vec<Volume>, Ec2Error> {
        self.describe_all("DescribeVolumes", filters, xml::volumes)
            .await
    }

    pub async fn delete_security_group(&self, group_id: &str) -> Result<(), Ec2Error> {
        self.call(
            "DeleteSecurityGroup",
            &[("GroupId".into(), group_id.into())],
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_volume(&self, volume_id: &str) -> Result<(), Ec2Error> {
        self.call("DeleteVolume", &[("VolumeId".into(), volume_id.into())])
            .await
            .map(|_| ())
    }

    /// A security group in `vpc_id`, tagged on creation; its id.
    pub async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        vpc_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, Ec2Error> {
        let mut params = vec![
            ("GroupName".to_string(), name.to_string()),
            ("GroupDescription".to_string(), description.to_string()),
            ("VpcId".to_string(), vpc_id.to_string()),
        ];
        params.extend(tag_specification("security-group", tags));
        let text = self.call("CreateSecurityGroup", &params).await?;
        xml::field(&text, "groupId").ok_or_else(|| Ec2Error::Transport {
            action: "CreateSecurityGroup".into(),
            message: "no groupId in the answer".into(),
        })
    }

    /// A volume of `size_gib` in `zone`, tagged on creation; its id.
    pub async fn create_volume(
        &self,
        zone: &str,
        size_gib: u64,
        volume_type: &str,
        encrypted: bool,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, Ec2Error> {
        let mut params = vec![
            ("AvailabilityZone".to_string(), zone.to_string()),
            ("Size".to_string(), size_gib.to_string()),
            ("VolumeType".to_string(), volume_type.to_string()),
            ("Encrypted".to_string(), encrypted.to_string()),
        ];
        params.extend(tag_specification("volume", tags));
        let text = self.call("CreateVolume", &params).await?;
        xml::field(&text, "volumeId").ok_or_else(|| Ec2Error::Transport {
            action: "CreateVolume".into(),
            message: "no volumeId in the answer".into(),
        })
    }

    /// A VPC with `cidr`; its id.
    pub async fn create_vpc(&self, cidr: &str) -> Result<String, Ec2Error> {
        let text = self
            .call("CreateVpc", &[("CidrBlock".into(), cidr.into())])
            .await?;
        xml::field(&text, "vpcId").ok_or_else(|| Ec2Error::Transport {
            action: "CreateVpc".into(),
            message: "no vpcId in the answer".into(),
        })
    }

    /// A subnet of `vpc_id` in `zone`, tagged on creation; its id.
    pub async fn create_subnet(
        &self,
        vpc_id: &str,
        cidr: &str,
        zone: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, Ec2Error> {
        let mut params = vec![
            ("VpcId".to_string(), vpc_id.to_string()),
            ("CidrBlock".to_string(), cidr.to_string()),
            ("AvailabilityZone".to_string(), zone.to_string()),
        ];
        params.extend(tag_specification("subnet", tags));
        let text = self.call("CreateSubnet", &params).await?;
        xml::field(&text, "subnetId").ok_or_else(|| Ec2Error::Transport {
            action: "CreateSubnet".into(),
            message: "no subnetId in the answer".into(),
        })
    }
}

fn filter_params(filters: &[Filter]) -> Vec<(String, String)> {
    let mut params = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        let n = i + 1;
        params.push((format!("Filter.{n}.Name"), f.name.clone()));
        for (j, v) in f.values.iter().enumerate() {
            params.push((format!("Filter.{n}.Value.{}", j + 1), v.clone()));
        }
    }
    params
}

fn tag_specification(
    resource_type: &str,
    tags: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    if tags.is_empty() {
        return Vec::new();
    }
    let mut params = vec![(
        "TagSpecification.1.ResourceType".to_string(),
        resource_type.to_string(),
    )];
    for (i, (k, v)) in tags.iter().enumerate() {
        params.push((format!("TagSpecification.1.Tag.{}.Key", i + 1), k.clone()));
        params.push((format!("TagSpecification.1.Tag.{}.Value", i + 1), v.clone()));
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_tags_are_numbered_from_one_as_the_query_api_wants() {
        let params = filter_params(&[
            Filter::new("vpc-id", &["vpc-1"]),
            Filter::new("tag:kubernetes.io/role/elb", &["", "1"]),
        ]);
        assert_eq!(
            params,
            [
                ("Filter.1.Name", "vpc-id"),
                ("Filter.1.Value.1", "vpc-1"),
                ("Filter.2.Name", "tag:kubernetes.io/role/elb"),
                ("Filter.2.Value.1", ""),
                ("Filter.2.Value.2", "1"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let tags = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert_eq!(
            tag_specification("volume", &tags),
            [
                ("TagSpecification.1.ResourceType", "volume"),
                ("TagSpecification.1.Tag.1.Key", "a"),
                ("TagSpecification.1.Tag.1.Value", "1"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
