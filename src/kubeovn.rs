//! The Kube-OVN custom resources bgpgen reads (`kubeovn.io/v1`), with only the fields the rules use.
//! Unknown fields are ignored so that newer Kube-OVN versions keep working; a used field with the
//! wrong type is an error.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "kubeovn.io/v1";

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Subnet {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: SubnetSpec,
    #[serde(default)]
    pub status: Option<SubnetStatus>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetSpec {
    #[serde(default)]
    pub cidr_block: String,
    #[serde(default)]
    pub nat_outgoing: bool,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SubnetStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Condition {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IptablesEip {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: IptablesEipSpec,
    #[serde(default)]
    pub status: IptablesEipStatus,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IptablesEipSpec {
    #[serde(default)]
    pub v4ip: String,
    #[serde(default)]
    pub v6ip: String,
    #[serde(default)]
    pub nat_gw_dp: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IptablesEipStatus {
    #[serde(default)]
    pub ready: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct VpcNatGateway {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: VpcNatGatewaySpec,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcNatGatewaySpec {
    #[serde(default)]
    pub bgp_speaker: Option<VpcBgpSpeaker>,
}

/// `VpcNatGateway.spec.bgpSpeaker`, as the Kube-OVN controller maps it to speaker arguments.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcBgpSpeaker {
    #[serde(default, deserialize_with = "strict::boolean")]
    pub enabled: bool,
    #[serde(default, deserialize_with = "strict::uint32")]
    pub asn: u32,
    #[serde(default, deserialize_with = "strict::uint32")]
    pub remote_asn: u32,
    #[serde(default)]
    pub neighbors: Vec<String>,
    /// A Go duration string (`metav1.Duration`), e.g. `1m`.
    #[serde(default)]
    pub hold_time: Option<String>,
    #[serde(default, rename = "routerId")]
    pub router_id: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "strict::boolean")]
    pub enable_graceful_restart: bool,
    #[serde(default)]
    pub extra_args: Vec<String>,
}

/// The CRD's schema types, as the API server enforces them: a quoted `"true"` or `"65000"` is a
/// string and refused, in YAML as in JSON (YAML readers would otherwise coerce it). The speaker
/// flags these fields become are text, and there `true` and "true" are the same value.
mod strict {
    use serde::Deserializer;
    use serde::de::{Error, Visitor};
    use std::fmt;

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = bool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean (true or false, unquoted)")
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<bool, E> {
                Ok(v)
            }
        }
        d.deserialize_any(V)
    }

    pub fn uint32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = u32;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer from 0 to 4294967295, unquoted")
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<u32, E> {
                u32::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<u32, E> {
                u32::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
            }
        }
        d.deserialize_any(V)
    }
}

/// `kube::Resource` by hand: kube-derive's default plurals are wrong for two of these CRDs
/// (`iptables-eips`, `vpc-nat-gateways`), and all three are cluster-scoped.
macro_rules! cluster_resource {
    ($ty:ty, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = kube::core::ClusterResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                "kubeovn.io".into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                "v1".into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

cluster_resource!(Subnet, "Subnet", "subnets");
cluster_resource!(IptablesEip, "IptablesEIP", "iptables-eips");
cluster_resource!(VpcNatGateway, "VpcNatGateway", "vpc-nat-gateways");
