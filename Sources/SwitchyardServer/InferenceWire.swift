import Switchyard
import SwitchyardProtos

/// The message types of `Protos/switchyard/v1/inference.proto` and `grpc/health/v1/health.proto`
/// (encoded and decoded by `WireMessage`), and the RPC method paths.
public enum InferenceWire {
    /// `ExpertWeight`: one expert of a weighted mix (`name`, `weight`).
    public static let expertWeight = WireType(Switchyard__V1__ExpertWeight.self, switchyard__v1__expert_weight__init)
    /// `GenerateRequest`: the request of the server-streaming `Generate` RPC.
    public static let generateRequest = WireType(
        Switchyard__V1__GenerateRequest.self, switchyard__v1__generate_request__init)
    /// `RoutingDecision`: the experts and weights chosen for one token at one layer (`layer` -1: all layers).
    public static let routingDecision = WireType(
        Switchyard__V1__RoutingDecision.self, switchyard__v1__routing_decision__init)
    /// `Timings`: milliseconds from admission to first scheduling, first token and last event, and decode tokens/s.
    public static let timings = WireType(Switchyard__V1__Timings.self, switchyard__v1__timings__init)
    /// `GenerateEvent`: one generated token, or the final summary (`finish_reason` set).
    public static let generateEvent = WireType(Switchyard__V1__GenerateEvent.self, switchyard__v1__generate_event__init)
    /// `ScoreRequest`: the tokens to score (at least 2, or a text prompt) and their routing.
    public static let scoreRequest = WireType(Switchyard__V1__ScoreRequest.self, switchyard__v1__score_request__init)
    /// `ScoreResponse`: the scored token ids, log p of each after the first, and their sum.
    public static let scoreResponse = WireType(Switchyard__V1__ScoreResponse.self, switchyard__v1__score_response__init)
    /// `ExpertInfo`: a registry expert: name, sha256, largest rank, target modules, bytes, residency.
    public static let expertInfo = WireType(Switchyard__V1__ExpertInfo.self, switchyard__v1__expert_info__init)
    /// `ListExpertsRequest` (empty).
    public static let listExpertsRequest = WireType(
        Switchyard__V1__ListExpertsRequest.self, switchyard__v1__list_experts_request__init)
    /// `ListExpertsResponse`: every registered expert as an `expertInfo` (field `experts`).
    public static let listExpertsResponse = WireType(
        Switchyard__V1__ListExpertsResponse.self, switchyard__v1__list_experts_response__init)
    /// `AddExpertRequest`: a registry `name` and a PEFT adapter directory `path` on the server's disk.
    public static let addExpertRequest = WireType(
        Switchyard__V1__AddExpertRequest.self, switchyard__v1__add_expert_request__init)
    /// `AddExpertResponse`: the registered expert (field `expert`).
    public static let addExpertResponse = WireType(
        Switchyard__V1__AddExpertResponse.self, switchyard__v1__add_expert_response__init)
    /// `RemoveExpertRequest`: the registry `name` to remove.
    public static let removeExpertRequest = WireType(
        Switchyard__V1__RemoveExpertRequest.self, switchyard__v1__remove_expert_request__init)
    /// `RemoveExpertResponse` (empty).
    public static let removeExpertResponse = WireType(
        Switchyard__V1__RemoveExpertResponse.self, switchyard__v1__remove_expert_response__init)
    /// `RouterInfo`: a held router: name, granularity ("sentence", "token" or "rank") and expert names.
    public static let routerInfo = WireType(Switchyard__V1__RouterInfo.self, switchyard__v1__router_info__init)
    /// `ListRoutersRequest` (empty).
    public static let listRoutersRequest = WireType(
        Switchyard__V1__ListRoutersRequest.self, switchyard__v1__list_routers_request__init)
    /// `ListRoutersResponse`: every held router as a `routerInfo` (field `routers`).
    public static let listRoutersResponse = WireType(
        Switchyard__V1__ListRoutersResponse.self, switchyard__v1__list_routers_response__init)
    /// `AddRouterRequest`: a serialised `RouterSpec` (field `router_spec`), held under its name.
    public static let addRouterRequest = WireType(
        Switchyard__V1__AddRouterRequest.self, switchyard__v1__add_router_request__init)
    /// `AddRouterResponse`: the added router (field `router`).
    public static let addRouterResponse = WireType(
        Switchyard__V1__AddRouterResponse.self, switchyard__v1__add_router_response__init)
    /// `ComposeExample`: one few-shot prompt/completion pair for `Compose`.
    public static let composeExample = WireType(
        Switchyard__V1__ComposeExample.self, switchyard__v1__compose_example__init)
    /// `ComposeRequest`: the new expert's name, examples, candidate experts, budget, seed, l1 and optimizer.
    public static let composeRequest = WireType(
        Switchyard__V1__ComposeRequest.self, switchyard__v1__compose_request__init)
    /// `ComposeEvent`: progress per objective evaluation; the last one carries the weights and the registered `expert`.
    public static let composeEvent = WireType(Switchyard__V1__ComposeEvent.self, switchyard__v1__compose_event__init)
    /// `InfoRequest` (empty).
    public static let infoRequest = WireType(Switchyard__V1__InfoRequest.self, switchyard__v1__info_request__init)
    /// `Limits`: the server's batch, queue, max-tokens, context and message-size limits.
    public static let limits = WireType(Switchyard__V1__Limits.self, switchyard__v1__limits__init)
    /// `InfoResponse`: version, model shape, experts, routers, limits and running counters.
    public static let infoResponse = WireType(Switchyard__V1__InfoResponse.self, switchyard__v1__info_response__init)
    /// `ExpertCounters`: requests and generated tokens per routing target (expert or router).
    public static let expertCounters = WireType(
        Switchyard__V1__ExpertCounters.self, switchyard__v1__expert_counters__init)
    /// `ChatMessage`: one conversation turn (`role`, `content`).
    public static let chatMessage = WireType(Switchyard__V1__ChatMessage.self, switchyard__v1__chat_message__init)
    /// `grpc.health.v1.HealthCheckRequest`: the `service` to check (empty: the server).
    public static let healthCheckRequest = WireType(
        Grpc__Health__V1__HealthCheckRequest.self, grpc__health__v1__health_check_request__init)
    /// `grpc.health.v1.HealthCheckResponse`: `status` 1 SERVING, 2 NOT_SERVING.
    public static let healthCheckResponse = WireType(
        Grpc__Health__V1__HealthCheckResponse.self, grpc__health__v1__health_check_response__init)

    /// `/switchyard.v1.Inference/<name>`.
    public static func method(_ name: String) -> String { "/switchyard.v1.Inference/\(name)" }
    /// Path of the standard gRPC health check (unary; `healthCheckRequest` → `healthCheckResponse`).
    public static let healthCheck = "/grpc.health.v1.Health/Check"
    /// Path of the standard gRPC health watch (server-streaming `healthCheckResponse`s).
    public static let healthWatch = "/grpc.health.v1.Health/Watch"
}
