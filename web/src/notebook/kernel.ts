// A Jupyter kernel client over the hub's kernel WebSocket (the plain JSON protocol:
// one JSON text message per Jupyter message, with its channel). It reconnects by
// itself with the same session_id, so the hub replays what was missed while the
// connection was down.

export interface JMsg {
  header: { msg_id: string; msg_type: string; session: string; username: string; date: string; version: string };
  parent_header: { msg_id?: string; msg_type?: string } & Record<string, any>;
  metadata: Record<string, any>;
  content: any;
  channel: string;
  buffers?: any[];
}

export interface ExecHandlers {
  onIOPub(msg: JMsg): void;
  onReply(msg: JMsg): void;
  onInput(msg: JMsg): void;
}

export type ConnState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

const uuid = () => (crypto as any).randomUUID ? crypto.randomUUID() : Math.random().toString(16).slice(2) + Date.now().toString(16);

export class KernelClient {
  ws: WebSocket | null = null;
  state: ConnState = 'connecting';
  executionState = 'unknown';
  private handlers = new Map<string, ExecHandlers>();
  private waiters = new Map<string, (m: JMsg) => void>();
  private outbox: string[] = [];
  private retry = 0;
  private closed = false;
  private timer: number | undefined;
  onStatus: (state: string, reason?: string) => void = () => {};
  onConn: (s: ConnState) => void = () => {};
  onNotice: (level: string, text: string) => void = () => {};
  /** iopub messages for requests this client did not make (another tab's runs). */
  onOther: (m: JMsg) => void = () => {};

  constructor(public kernelId: string, public sessionId: string) {
    this.open();
  }

  private open(): void {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/api/kernels/${encodeURIComponent(this.kernelId)}/channels?session_id=${encodeURIComponent(this.sessionId)}`);
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      this.setConn('connected');
      for (const m of this.outbox.splice(0)) ws.send(m);
      this.request('kernel_info_request', {}, 'shell').catch(() => {});
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let m: JMsg;
      try { m = JSON.parse(ev.data); } catch { return; }
      this.dispatch(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) { this.setConn('closed'); return; }
      this.setConn('reconnecting');
      const delay = Math.min(10000, 500 * 2 ** this.retry++);
      this.timer = window.setTimeout(() => this.open(), delay);
    };
  }

  /** Reconnects now (after the browser says it is online again). */
  reconnectNow(): void {
    if (this.closed || (this.ws && this.ws.readyState <= 1)) return;
    clearTimeout(this.timer);
    this.retry = 0;
    this.open();
  }

  private setConn(s: ConnState): void {
    this.state = s;
    this.onConn(s);
  }

  private dispatch(m: JMsg): void {
    const parent = m.parent_header?.msg_id;
    const type = m.header?.msg_type;
    if (m.channel === 'iopub' && type === 'status') {
      this.executionState = m.content.execution_state;
      this.onStatus(m.content.execution_state, m.content.reason);
    }
    if (m.channel === 'iopub' && type === 'labbook_notice') {
      this.onNotice(m.content.level, m.content.text);
      return;
    }
    const h = parent ? this.handlers.get(parent) : undefined;
    if (m.channel === 'iopub') {
      if (h) h.onIOPub(m);
      else this.onOther(m);
    } else if (m.channel === 'stdin') {
      if (h && type === 'input_request') h.onInput(m);
    } else if (m.channel === 'shell' || m.channel === 'control') {
      if (h && type === 'execute_reply') h.onReply(m);
      const w = parent ? this.waiters.get(parent) : undefined;
      if (w) { this.waiters.delete(parent!); w(m); }
    }
  }

  private make(type: string, content: any, channel: string, metadata: Record<string, any> = {}): JMsg {
    return {
      header: { msg_id: uuid(), msg_type: type, session: this.sessionId, username: '', date: new Date().toISOString(), version: '5.3' },
      parent_header: {}, metadata, content, channel, buffers: [],
    };
  }

  private send(m: JMsg): void {
    const text = JSON.stringify(m);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
    else this.outbox.push(text);
  }

  execute(code: string, cellId: string, h: ExecHandlers): string {
    const m = this.make('execute_request', { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: true, stop_on_error: true }, 'shell', { cellId });
    this.handlers.set(m.header.msg_id, h);
    this.send(m);
    return m.header.msg_id;
  }

  forget(msgId: string): void {
    this.handlers.delete(msgId);
  }

  request(type: string, content: any, channel = 'shell', timeoutMs = 15000): Promise<JMsg> {
    const m = this.make(type, content, channel);
    this.send(m);
    return new Promise((resolve, reject) => {
      const t = window.setTimeout(() => { this.waiters.delete(m.header.msg_id); reject(new Error(`${type}: no reply`)); }, timeoutMs);
      this.waiters.set(m.header.msg_id, (r) => { clearTimeout(t); resolve(r); });
    });
  }

  inputReply(value: string): void {
    this.send(this.make('input_reply', { value, status: 'ok' }, 'stdin'));
  }

  /** Drops the handlers of runs in flight (after a restart: they will never end). */
  dropRuns(): string[] {
    const ids = [...this.handlers.keys()];
    this.handlers.clear();
    return ids;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
    this.setConn('closed');
  }
}
