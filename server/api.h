/*
 * api: the handlers of every call in service Sandboxes, one per rpc. The
 * table protoc-c generates (SBX__V1__SANDBOXES__INIT(api_)) makes a missing
 * handler a compile error. Each runs on the loop thread and completes its
 * call exactly once: DONE(reply, CALL) or rpc_fail(CALL, ...).
 */
#ifndef SBX_API_H
#define SBX_API_H

#include "sbx.pb-c.h"

void api_health(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__HealthRequest *req,
                Sbx__V1__HealthReply_Closure done, void *call);
void api_create(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__CreateRequest *req,
                Sbx__V1__SandboxInfo_Closure done, void *call);
void api_get(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__GetRequest *req,
             Sbx__V1__SandboxInfo_Closure done, void *call);
void api_list(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__ListRequest *req,
              Sbx__V1__ListReply_Closure done, void *call);
void api_kill(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__KillRequest *req,
              Sbx__V1__KillReply_Closure done, void *call);
void api_set_timeout(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__SetTimeoutRequest *req,
                     Sbx__V1__SandboxInfo_Closure done, void *call);
void api_process_start(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__ProcessStartRequest *req,
                       Sbx__V1__ProcessInfo_Closure done, void *call);
void api_process_input(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__ProcessInputRequest *req,
                       Sbx__V1__Empty_Closure done, void *call);
void api_process_close_stdin(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__ProcessCloseStdinRequest *req,
                             Sbx__V1__Empty_Closure done, void *call);
void api_process_signal(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__ProcessSignalRequest *req,
                        Sbx__V1__Empty_Closure done, void *call);
void api_process_resize(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__ProcessResizeRequest *req,
                        Sbx__V1__Empty_Closure done, void *call);
void api_process_list(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__ProcessListRequest *req,
                      Sbx__V1__ProcessListReply_Closure done, void *call);
void api_file_write(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__FileWriteRequest *req,
                    Sbx__V1__FileEntry_Closure done, void *call);
void api_file_read(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__FileReadRequest *req,
                   Sbx__V1__FileReadReply_Closure done, void *call);
void api_file_list(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__FileListRequest *req,
                   Sbx__V1__FileListReply_Closure done, void *call);
void api_file_stat(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__FileStatRequest *req,
                   Sbx__V1__FileEntry_Closure done, void *call);
void api_file_mkdir(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__FileMkdirRequest *req,
                    Sbx__V1__FileEntry_Closure done, void *call);
void api_file_move(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__FileMoveRequest *req,
                   Sbx__V1__FileEntry_Closure done, void *call);
void api_file_remove(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__FileRemoveRequest *req,
                     Sbx__V1__Empty_Closure done, void *call);
void api_events_fetch(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__EventsFetchRequest *req,
                      Sbx__V1__EventsFetchReply_Closure done, void *call);
void api_stream_hold(Sbx__V1__Sandboxes_Service *svc,
                     const Sbx__V1__StreamHoldRequest *req,
                     Sbx__V1__Empty_Closure done, void *call);

#endif
