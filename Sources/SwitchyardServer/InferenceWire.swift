import Switchyard
import SwitchyardProtos

/// The message types of `Protos/switchyard/v1/inference.proto` and `grpc/health/v1/health.proto`
/// (encoded and decoded by `WireMessage`), and the RPC method paths.
public enum InferenceWire {
    public static let expertWeight = WireType(Switchyard__V1__ExpertWeight.self, switchyard__v1__expert_weight__init)
    public static let generateRequest = WireType(Switchyard__V1__GenerateRequest.self, switchyard__v1__generate_request__init)
    public static let routingDecision = WireType(Switchyard__V1__RoutingDecision.self, switchyard__v1__routing_decision__init)
    public static let timings = WireType(Switchyard__V1__Timings.self, switchyard__v1__timings__init)
    public static let generateEvent = WireType(Switchyard__V1__GenerateEvent.self, switchyard__v1__generate_event__init)
    public static let scoreRequest = WireType(Switchyard__V1__ScoreRequest.self, switchyard__v1__score_request__init)
    public static let scoreResponse = WireType(Switchyard__V1__ScoreResponse.self, switchyard__v1__score_response__init)
    public static let expertInfo = WireType(Switchyard__V1__ExpertInfo.self, switchyard__v1__expert_info__init)
    public static let listExpertsRequest = WireType(Switchyard__V1__ListExpertsRequest.self, switchyard__v1__list_experts_request__init)
    public static let listExpertsResponse = WireType(Switchyard__V1__ListExpertsResponse.self, switchyard__v1__list_experts_response__init)
    public static let addExpertRequest = WireType(Switchyard__V1__AddExpertRequest.self, switchyard__v1__add_expert_request__init)
    public static let addExpertResponse = WireType(Switchyard__V1__AddExpertResponse.self, switchyard__v1__add_expert_response__init)
    public static let removeExpertRequest = WireType(Switchyard__V1__RemoveExpertRequest.self, switchyard__v1__remove_expert_request__init)
    public static let removeExpertResponse = WireType(Switchyard__V1__RemoveExpertResponse.self, switchyard__v1__remove_expert_response__init)
    public static let routerInfo = WireType(Switchyard__V1__RouterInfo.self, switchyard__v1__router_info__init)
    public static let listRoutersRequest = WireType(Switchyard__V1__ListRoutersRequest.self, switchyard__v1__list_routers_request__init)
    public static let listRoutersResponse = WireType(Switchyard__V1__ListRoutersResponse.self, switchyard__v1__list_routers_response__init)
    public static let addRouterRequest = WireType(Switchyard__V1__AddRouterRequest.self, switchyard__v1__add_router_request__init)
    public static let addRouterResponse = WireType(Switchyard__V1__AddRouterResponse.self, switchyard__v1__add_router_response__init)
    public static let composeExample = WireType(Switchyard__V1__ComposeExample.self, switchyard__v1__compose_example__init)
    public static let composeRequest = WireType(Switchyard__V1__ComposeRequest.self, switchyard__v1__compose_request__init)
    public static let composeEvent = WireType(Switchyard__V1__ComposeEvent.self, switchyard__v1__compose_event__init)
    public static let infoRequest = WireType(Switchyard__V1__InfoRequest.self, switchyard__v1__info_request__init)
    public static let limits = WireType(Switchyard__V1__Limits.self, switchyard__v1__limits__init)
    public static let infoResponse = WireType(Switchyard__V1__InfoResponse.self, switchyard__v1__info_response__init)
    public static let expertCounters = WireType(Switchyard__V1__ExpertCounters.self, switchyard__v1__expert_counters__init)
    public static let chatMessage = WireType(Switchyard__V1__ChatMessage.self, switchyard__v1__chat_message__init)
    public static let healthCheckRequest = WireType(Grpc__Health__V1__HealthCheckRequest.self, grpc__health__v1__health_check_request__init)
    public static let healthCheckResponse = WireType(Grpc__Health__V1__HealthCheckResponse.self, grpc__health__v1__health_check_response__init)

    /// `/switchyard.v1.Inference/<name>`.
    public static func method(_ name: String) -> String { "/switchyard.v1.Inference/\(name)" }
    public static let healthCheck = "/grpc.health.v1.Health/Check"
    public static let healthWatch = "/grpc.health.v1.Health/Watch"
}
