#!/usr/bin/env escript
%% Removes from the plugins directory every application the broker does not run: the Debian
%% package ships ~70 (management, MQTT, STOMP, federation, LDAP, ...) and, enabled or not, the
%% broker loads the modules of every one of them at each boot (about 2.5 s of CPU of its ~6).
%% Kept: rabbit and what it depends on, as the .app files declare it, plus the applications
%% used without a declaration (EXTRA).
-define(EXTRA, [enough]).  % systemd starts it (rabbit_boot_state_systemd) but does not declare it

main([Dir]) ->
    Apps = maps:from_list([app(Dir, Path) || Path <- filelib:wildcard(filename:join(Dir, "*/ebin/*.app"))]),
    Keep = closure([rabbit | ?EXTRA], Apps, #{}),
    Gone = [filename:join(Dir, Sub) || {Name, {Sub, _}} <- maps:to_list(Apps), not maps:is_key(Name, Keep)],
    [ok = file:del_dir_r(Path) || Path <- Gone],
    io:format("kept ~p plugin applications, removed ~p~n", [map_size(Keep), length(Gone)]).

app(Dir, Path) ->
    {ok, [{application, Name, Props}]} = file:consult(Path),
    Sub = hd(filename:split(string:prefix(Path, Dir ++ "/"))),
    {Name, {Sub, proplists:get_value(applications, Props, [])}}.

%% Only applications of the plugins directory count: OTP's own (kernel, ssl, ...) stay where they are.
closure([], _Apps, Keep) -> Keep;
closure([Name | Rest], Apps, Keep) ->
    case {maps:find(Name, Apps), maps:is_key(Name, Keep)} of
        {{ok, {_, Deps}}, false} -> closure(Deps ++ Rest, Apps, Keep#{Name => true});
        _ -> closure(Rest, Apps, Keep)
    end.
