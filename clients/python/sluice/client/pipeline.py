"""Client of the pipeline service: pipeline definitions and their runs."""

from __future__ import annotations

from collections.abc import Iterator

from sluice.client._rpc import ServerStream, ServiceClient, Unary, paginate
from sluice.pipeline.v1 import pipeline_pb2, pipeline_service_pb2_grpc
from sluice.pipeline.v1 import pipeline_service_pb2 as pb


class PipelineClient(ServiceClient):
    """The pipeline service; each RPC is a method named after it (see `ServiceClient`)."""

    service = "pipeline"
    stub_class = pipeline_service_pb2_grpc.PipelineServiceStub

    create_pipeline = Unary("CreatePipeline", pb.CreatePipelineRequest, pb.CreatePipelineResponse)
    get_pipeline = Unary("GetPipeline", pb.GetPipelineRequest, pb.GetPipelineResponse)
    list_pipelines = Unary("ListPipelines", pb.ListPipelinesRequest, pb.ListPipelinesResponse)
    update_pipeline = Unary("UpdatePipeline", pb.UpdatePipelineRequest, pb.UpdatePipelineResponse)
    delete_pipeline = Unary("DeletePipeline", pb.DeletePipelineRequest, pb.DeletePipelineResponse)
    create_pipeline_run = Unary(
        "CreatePipelineRun", pb.CreatePipelineRunRequest, pb.CreatePipelineRunResponse
    )
    get_pipeline_run = Unary("GetPipelineRun", pb.GetPipelineRunRequest, pb.GetPipelineRunResponse)
    list_pipeline_runs = Unary(
        "ListPipelineRuns", pb.ListPipelineRunsRequest, pb.ListPipelineRunsResponse
    )
    cancel_pipeline_run = Unary(
        "CancelPipelineRun", pb.CancelPipelineRunRequest, pb.CancelPipelineRunResponse
    )
    watch_pipeline_run = ServerStream(
        "WatchPipelineRun", pb.WatchPipelineRunRequest, pb.WatchPipelineRunResponse
    )

    def iter_pipelines(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[pipeline_pb2.Pipeline]:
        return paginate(
            lambda token: self.list_pipelines(
                page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.pipelines,
        )

    def iter_pipeline_runs(
        self, pipeline: str = "", *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[pipeline_pb2.PipelineRun]:
        """Every run, or the runs of one pipeline (by name)."""
        return paginate(
            lambda token: self.list_pipeline_runs(
                pipeline=pipeline, page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.runs,
        )
