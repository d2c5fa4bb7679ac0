%% counter: one counter for the whole cluster, registered with `global`.
%%
%%     counter:start()   -> {ok, Pid} | {error, {already_started, Pid}}
%%     counter:incr()    -> the new value
%%     counter:value()   -> the current value
%%     counter:home()    -> the node it runs on, or none
%%     counter:local()   -> how many counters run on this node
-module(counter).
-behaviour(gen_server).

-export([start/0, incr/0, value/0, home/0, local/0]).
-export([init/1, handle_call/3, handle_cast/2]).

start() -> gen_server:start({global, counter}, ?MODULE, 0, []).
incr() -> gen_server:call({global, counter}, incr).
value() -> gen_server:call({global, counter}, value).

home() ->
    case global:whereis_name(counter) of
        undefined -> none;
        Pid -> node(Pid)
    end.

local() ->
    length([P || P <- processes(),
                 proc_lib:translate_initial_call(P) =:= {?MODULE, init, 1}]).

init(N) -> {ok, N}.

handle_call(incr, _From, N) -> {reply, N + 1, N + 1};
handle_call(value, _From, N) -> {reply, N, N}.

handle_cast(_Msg, N) -> {noreply, N}.
