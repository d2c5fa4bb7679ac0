%% @doc One leader per cluster: a process registered with `global' under
%% the name `leader'.  When two leaders meet after a netsplit, global keeps
%% one of them and kills the other.
-module(leader).

-export([elect/0, current/0, loop/0]).

%% @doc Becomes the leader unless the cluster (as far as this node can
%% see) already has one.  Returns the leader's pid either way.
-spec elect() -> {elected | existing, pid()}.
elect() ->
    Pid = spawn(?MODULE, loop, []),
    case global:register_name(leader, Pid, fun global:random_exit_name/3) of
        yes ->
            {elected, Pid};
        no ->
            exit(Pid, kill),
            {existing, global:whereis_name(leader)}
    end.

%% @doc The leader this node knows of, or `undefined'.
-spec current() -> pid() | undefined.
current() ->
    global:whereis_name(leader).

%% @private
loop() ->
    receive
        stop -> ok;
        _ -> loop()
    end.
