"""The annotation tool's web API (FastAPI) and its static page.

Every error a user can cause comes back as ``{"detail": "..."}`` with a 4xx status: 404 for
an image, annotation, proposal or class that does not exist (including any name that tries
to leave the image folder), 400 for a malformed prompt or value, 409 for a second search
while one runs. Images are addressed by their position in the folder, never by a path.
"""
import os.path as osp
from typing import List, Optional

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from .prompt_segmenter import PromptError
from .session import AnnotationSession

STATIC = osp.join(osp.dirname(osp.abspath(__file__)), 'static')


class Prompt(BaseModel):
    points: List[List[float]] = Field(default_factory=list,
                                      description='clicks [x, y, label], 1 object 0 background')
    box: Optional[List[float]] = Field(None, description='[x1, y1, x2, y2] in image pixels')
    mask_index: Optional[int] = Field(None, description='candidate chosen (default: best IoU)')


class SegmentRequest(Prompt):
    image: str


class InstanceRequest(BaseModel):
    image: str
    category: str = Field(description='class name (or id as a string)')
    prompts: List[Prompt]


class RelabelRequest(BaseModel):
    category: str


class NameRequest(BaseModel):
    name: str


class ModeRequest(BaseModel):
    mode: str


class FindRequest(BaseModel):
    model: str = 'main'
    instance_ids: List[int]
    images: Optional[List[str]] = None
    score_thr: float = 0.3
    max_dets: int = 20


class AcceptRequest(BaseModel):
    prompts: Optional[List[Prompt]] = None


def _category(store, value: str):
    """A class given as a name, or as its id written as digits."""
    return int(value) if value.isdigit() and value not in store.category_names() else value


def _dump(prompts: Optional[List[Prompt]]) -> Optional[list]:
    return None if prompts is None else [p.model_dump() for p in prompts]


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status: int):
        async def respond(request: Request, exc: Exception) -> JSONResponse:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return JSONResponse({'detail': str(msg)}, status_code=status)
        return respond

    app.add_exception_handler(KeyError, handler(404))
    app.add_exception_handler(PromptError, handler(400))
    app.add_exception_handler(ValueError, handler(400))
    app.add_exception_handler(RuntimeError, handler(409))


def create_app(session: AnnotationSession) -> FastAPI:
    """The FastAPI app serving ``session`` (routes: see ``docs/annotate.md``)."""
    app = FastAPI(title='SAMBOX annotation tool')
    _add_error_handlers(app)
    app.mount('/static', StaticFiles(directory=STATIC), name='static')
    store = session.store
    _add_image_routes(app, session)
    _add_annotation_routes(app, session)
    _add_find_routes(app, session)

    @app.get('/', include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(osp.join(STATIC, 'index.html'))

    @app.get('/api/state')
    def state() -> dict:
        return session.state()

    @app.post('/api/categories')
    def add_category(req: NameRequest) -> dict:
        return dict(id=store.add_category(req.name), categories=store.categories)

    @app.post('/api/mode')
    def set_mode(req: ModeRequest) -> dict:
        store.set_mode(req.mode)
        return dict(mode=store.mode)

    @app.post('/api/undo')
    def undo() -> dict:
        return dict(undone=store.undo())

    @app.post('/api/save')
    def save() -> dict:
        store.save()
        return dict(saved=store.out_path, annotations=len(store.instances))

    @app.get('/api/export')
    def export(segmentation: str = 'rle') -> dict:
        if segmentation not in ('rle', 'polygon'):
            raise ValueError(f"segmentation must be 'rle' or 'polygon', got {segmentation!r}")
        return store.to_coco(polygons=segmentation == 'polygon')

    return app


def _add_image_routes(app: FastAPI, session: AnnotationSession) -> None:
    folder = session.folder

    @app.get('/api/images/{index}/file')
    def image_file(index: int) -> Response:
        data, media = folder.browser_bytes(folder.name_at(index))
        return Response(data, media_type=media)

    @app.post('/api/images/{index}/focus')
    def focus(index: int) -> dict:
        name = folder.name_at(index)
        session.job.focus(name)
        return dict(image=name, embedded=session.segmenter.is_embedded(folder.path(name)))

    @app.get('/api/progress')
    def progress() -> dict:
        return session.job.progress()

    @app.post('/api/segment')
    def segment(req: SegmentRequest) -> dict:
        return session.segment(req.image, req.points, req.box)


def _add_annotation_routes(app: FastAPI, session: AnnotationSession) -> None:
    store = session.store

    @app.get('/api/instances')
    def instances(image: str) -> list:
        return [session.view(a) for a in store.of_image(image)]

    @app.post('/api/instances')
    def add_instance(req: InstanceRequest) -> dict:
        return session.commit(req.image, _category(store, req.category), _dump(req.prompts))

    @app.patch('/api/instances/{ann_id}')
    def relabel(ann_id: int, req: RelabelRequest) -> dict:
        return session.view(store.relabel(ann_id, _category(store, req.category)))

    @app.get('/api/instances/{ann_id}/heatmap')
    def heatmap(ann_id: int) -> Response:
        return Response(session.heatmap_png(ann_id), media_type='image/png')

    @app.delete('/api/instances/{ann_id}')
    def delete(ann_id: int) -> dict:
        store.delete(ann_id)
        return dict(deleted=ann_id)


def _add_find_routes(app: FastAPI, session: AnnotationSession) -> None:
    finder = session.finder

    @app.post('/api/find_rest')
    def find_rest(req: FindRequest) -> dict:
        return finder.start(req.model, req.instance_ids, req.images, req.score_thr,
                            req.max_dets)

    @app.get('/api/review')
    def review(image: Optional[str] = None) -> dict:
        if image is not None:
            session.folder.index(image)
        return dict(status=finder.status,
                    proposals=[session.view(p) for p in finder.pending(image)])

    @app.post('/api/review/{pid}/accept')
    def accept(pid: int, req: Optional[AcceptRequest] = None) -> dict:
        prompts = _dump(req.prompts) if req is not None else None
        if prompts:
            mask, iou, stored = session.prompts_mask(finder.get(pid)['image'], prompts)
            return session.view(finder.accept(pid, mask, stored, iou))
        return session.view(finder.accept(pid))

    @app.post('/api/review/{pid}/reject')
    def reject(pid: int) -> dict:
        finder.reject(pid)
        return dict(rejected=pid)


def serve(session: AnnotationSession, host: str = '127.0.0.1', port: int = 8000) -> None:
    """Start encoding the folder and serve the page until interrupted."""
    import uvicorn
    session.start()
    uvicorn.run(create_app(session), host=host, port=port, log_level='warning')
